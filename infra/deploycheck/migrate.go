package deploycheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
	"github.com/tempwatch/tempwatch/shared/postgres"
)

// MigrateFunction is the folder of the deploy step that migrates the
// database (functions/migrate); the other functions only check the schema.
const MigrateFunction = "migrate"

// LocalStackDeploy is the LocalStack ready hook that deploys the functions.
const LocalStackDeploy = "localstack/init/ready.d/10-deploy.sh"

// migrateEntrypoint runs the function image's bootstrap as a plain command:
// the image's own entrypoint runs it under the runtime emulator, which waits
// for invocations and never completes.
var migrateEntrypoint = []string{"/var/runtime/bootstrap"}

// minMigrateTimeout is the least Lambda timeout that leaves the migrate
// function time to migrate and still answer CloudFormation.
const minMigrateTimeout = time.Minute

// CheckMigrate checks that every deploy path runs the migrate step before
// the functions that check the schema: in template.yaml a custom resource
// runs functions/migrate, names the latest embedded migration as its
// SchemaVersion (so the deploy that brings one updates the resource, which
// runs it), and every other function DependsOn it; in docker-compose.yml
// the migrate service runs its bootstrap once as a plain command after
// PostgreSQL is healthy, and every service given DATABASE_URL waits for it
// to complete successfully; the LocalStack hook invokes it before it puts
// up the REST API. devstack runs a template's deploy steps itself.
func CheckMigrate(ctx context.Context, root string) []error {
	var errs []error
	errs = append(errs, checkMigrateTemplate(root)...)
	errs = append(errs, checkMigrateCompose(ctx, root)...)
	return append(errs, checkMigrateLocalStack(root)...)
}

func checkMigrateTemplate(root string) []error {
	tpl, err := sam.Load(filepath.Join(root, TemplateFile))
	if err != nil {
		return []error{err}
	}
	ms, err := postgres.Migrations()
	if err != nil {
		return []error{err}
	}
	latest := ms[len(ms)-1]
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(TemplateFile+": "+format, args...))
	}
	i := slices.IndexFunc(tpl.Functions, func(f sam.Function) bool { return f.Name == MigrateFunction })
	if i < 0 {
		fail("no function has CodeUri functions/%s/: nothing would migrate the database", MigrateFunction)
		return errs
	}
	migrate := tpl.Functions[i]
	if migrate.Timeout < minMigrateTimeout {
		fail("%s: Timeout %s leaves no time to migrate and answer CloudFormation: give it at least %s", migrate.LogicalID, migrate.Timeout, minMigrateTimeout)
	}
	var runs []sam.CustomResource
	for _, cr := range tpl.CustomResources {
		if cr.Function == MigrateFunction {
			runs = append(runs, cr)
		}
	}
	if len(runs) != 1 {
		fail("want one custom resource with ServiceToken !GetAtt %s.Arn, so that sam deploy runs the migrate step; found %d", migrate.LogicalID, len(runs))
		return errs
	}
	cr := runs[0]
	if v, err := strconv.Atoi(cr.Properties["SchemaVersion"]); err != nil || v != latest.Version {
		fail("%s: SchemaVersion is %q, but the latest migration is %s: set it to %d, or the deploy that brings the migration does not run it",
			cr.LogicalID, cr.Properties["SchemaVersion"], latest.Name, latest.Version)
	}
	for _, f := range tpl.Functions {
		if f.Name != MigrateFunction && !slices.Contains(f.DependsOn, cr.LogicalID) {
			fail("%s does not DependOn %s: CloudFormation could create or update it before the schema is migrated, and it would refuse to start",
				f.LogicalID, cr.LogicalID)
		}
	}
	return errs
}

func checkMigrateCompose(ctx context.Context, root string) []error {
	p, err := loadCompose(ctx, root, ComposeFile)
	if err != nil {
		return []error{err}
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(ComposeFile+": "+format, args...))
	}
	svc, ok := p.Services[MigrateFunction]
	if !ok {
		fail("no service %q: nothing would migrate the database", MigrateFunction)
		return errs
	}
	if !slices.Equal(svc.Entrypoint, migrateEntrypoint) {
		fail("service %s: entrypoint must be %q, its bootstrap as a plain command (the image's own entrypoint runs it under the runtime emulator, which never completes)",
			MigrateFunction, migrateEntrypoint)
	}
	if svc.Restart != "" && svc.Restart != types.RestartPolicyNo {
		fail("service %s: restart %q: it runs once and exits", MigrateFunction, svc.Restart)
	}
	if dep, ok := svc.DependsOn["postgres"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		fail("service %s must depend on postgres with condition %s", MigrateFunction, types.ServiceConditionHealthy)
	}
	names := serviceNames(p)
	for _, name := range names {
		s := p.Services[name]
		if _, reads := s.Environment["DATABASE_URL"]; !reads || name == MigrateFunction {
			continue
		}
		if dep, ok := s.DependsOn[MigrateFunction]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
			fail("service %s reads DATABASE_URL but does not depend on %s with condition %s: it would start on an unmigrated schema and refuse",
				name, MigrateFunction, types.ServiceConditionCompletedSuccessfully)
		}
	}
	return errs
}

// localStackInvoke matches the hook's invocation of the migrate function,
// and localStackAPI its creation of the REST API.
var (
	localStackInvoke = regexp.MustCompile(`(?m)^[^#\n]*awslocal lambda invoke [^\n]*--function-name ` + MigrateFunction + `\b`)
	localStackAPI    = regexp.MustCompile(`(?m)^[^#\n]*awslocal apigateway create-rest-api\b`)
)

func checkMigrateLocalStack(root string) []error {
	b, err := os.ReadFile(filepath.Join(root, LocalStackDeploy))
	if err != nil {
		return []error{err}
	}
	invoke, api := localStackInvoke.FindIndex(b), localStackAPI.FindIndex(b)
	switch {
	case invoke == nil:
		return []error{fmt.Errorf("%s does not invoke the %s function (awslocal lambda invoke --function-name %s): the functions would find the schema unmigrated",
			LocalStackDeploy, MigrateFunction, MigrateFunction)}
	case api != nil && api[0] < invoke[0]:
		return []error{fmt.Errorf("%s puts up the REST API before it invokes %s: requests would reach functions on an unmigrated schema",
			LocalStackDeploy, MigrateFunction)}
	}
	return nil
}
