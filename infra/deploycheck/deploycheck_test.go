package deploycheck_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/deploycheck"
)

// repoRoot is the repository root: this package lives in infra/deploycheck.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(tb, err)
	require.FileExists(tb, filepath.Join(root, deploycheck.TemplateFile))
	return root
}

// MustCopyTree copies the files the checks read into a temp dir, so a test can
// break the copy: every file but Go sources, of which the checks only look for
// functions/<name>/main.go. Copying all 280 Go files into each of the hundred
// cases cost most of the fast tier's minute; mustCopySources copies them too.
func MustCopyTree(tb testing.TB, root string) string {
	tb.Helper()
	return copyTree(tb, root, func(rel string) bool {
		return !strings.HasSuffix(rel, ".go") || filepath.Base(rel) == "main.go" && filepath.Dir(filepath.Dir(rel)) == "functions"
	})
}

// mustCopySources copies every file, Go sources included, for a test that
// builds the copy.
func mustCopySources(tb testing.TB, root string) string {
	tb.Helper()
	return copyTree(tb, root, func(string) bool { return true })
}

// copyTree copies the files keep accepts, creating the folders they are in and
// every top-level folder (Dockerfiles COPY those). File system calls are slow
// here (a millisecond each in the sandbox), so nothing else is created.
func copyTree(tb testing.TB, root string, keep func(rel string) bool) string {
	dst := tb.TempDir()
	made := map[string]bool{".": true}
	mkdir := func(rel string) error {
		if made[rel] {
			return nil
		}
		made[rel] = true
		return os.MkdirAll(filepath.Join(dst, rel), 0o755)
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			switch {
			case d.Name() == "node_modules": // npm's (make lint installs TypeScript there); no check reads it
				return filepath.SkipDir
			case rel == ".git", rel == ".bin", rel == ".devstack", rel == filepath.Join("localstack", "build"):
				return filepath.SkipDir
			case filepath.Dir(rel) == ".":
				return mkdir(rel)
			}
			return nil
		}
		if !d.Type().IsRegular() || !keep(rel) {
			return nil
		}
		if err := mkdir(filepath.Dir(rel)); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, info.Mode().Perm())
	})
	require.NoError(tb, err)
	return dst
}

func mustWrite(tb testing.TB, file, content string) {
	tb.Helper()
	require.NoError(tb, os.MkdirAll(filepath.Dir(file), 0o755))
	require.NoError(tb, os.WriteFile(file, []byte(content), 0o644))
}

func mustEdit(tb testing.TB, file string, edit func(string) string) {
	tb.Helper()
	data, err := os.ReadFile(file)
	require.NoError(tb, err)
	out := edit(string(data))
	require.NotEqual(tb, string(data), out, "edit of %s changed nothing", file)
	require.NoError(tb, os.WriteFile(file, []byte(out), 0o644))
}

// assertHasError fails unless some error's text contains every one of parts.
func assertHasError(t *testing.T, errs []error, parts ...string) {
	t.Helper()
	for _, err := range errs {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(err.Error(), p)
		}
		if ok {
			return
		}
	}
	t.Errorf("no error mentions %q; got %v", parts, errs)
}

func TestRealTreeHasNoProblems(t *testing.T) {
	root := repoRoot(t)
	ctx := context.Background()
	t.Run("template", func(t *testing.T) { assert.Empty(t, deploycheck.CheckTemplate(root)) })
	t.Run("build", func(t *testing.T) {
		skipBuildIfShort(t)
		assert.Empty(t, deploycheck.CheckBuild(ctx, root, t.TempDir()))
	})
	t.Run("compose", func(t *testing.T) { assert.Empty(t, deploycheck.CheckCompose(ctx, root)) })
	t.Run("localstack", func(t *testing.T) { assert.Empty(t, deploycheck.CheckLocalStack(ctx, root)) })
	t.Run("broker", func(t *testing.T) { assert.Empty(t, deploycheck.CheckBroker(ctx, root)) })
	t.Run("broker limits", func(t *testing.T) { assert.Empty(t, deploycheck.CheckBrokerLimits(ctx, root)) })
	t.Run("aws iot", func(t *testing.T) { assert.Empty(t, deploycheck.CheckAWSIoT(root)) })
	t.Run("scrapes", func(t *testing.T) { assert.Empty(t, deploycheck.CheckScrapes(ctx, root)) })
	t.Run("migrate", func(t *testing.T) { assert.Empty(t, deploycheck.CheckMigrate(ctx, root)) })
	t.Run("environment", func(t *testing.T) { assert.Empty(t, deploycheck.CheckEnvironment(ctx, root)) })
}

func TestCheckMigrateFindsProblems(t *testing.T) {
	root := repoRoot(t)
	edit := func(file, old, new string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			mustEdit(t, filepath.Join(dir, file), func(s string) string { return strings.Replace(s, old, new, 1) })
		}
	}
	tpl, compose := deploycheck.TemplateFile, deploycheck.ComposeFile
	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{"no custom resource runs it", edit(tpl, "ServiceToken: !GetAtt MigrateFunction.Arn", "ServiceToken: arn:aws:lambda:us-east-1:000000000000:function:x"),
			[]string{"want one custom resource with ServiceToken !GetAtt MigrateFunction.Arn", "found 0"}},
		{"schema version behind the migrations", func(t *testing.T, dir string) {
			mustEdit(t, filepath.Join(dir, tpl), func(s string) string {
				return regexp.MustCompile(`SchemaVersion: \d+`).ReplaceAllString(s, "SchemaVersion: 0")
			})
		},
			[]string{"SchemaMigration: SchemaVersion is \"0\", but the latest migration is "}},
		{"a function that does not wait for it", edit(tpl, "  UsersFunction:\n    Type: AWS::Serverless::Function\n    DependsOn: SchemaMigration", "  UsersFunction:\n    Type: AWS::Serverless::Function"),
			[]string{"UsersFunction does not DependOn SchemaMigration"}},
		{"too short a timeout", edit(tpl, "Timeout: 900 #", "Timeout: 20 #"), []string{"MigrateFunction: Timeout 20s leaves no time"}},
		{"run under the emulator", edit(compose, `    entrypoint: ["/var/runtime/bootstrap"]`+"\n", ""), []string{"service migrate: entrypoint must be"}},
		{"restarted", edit(compose, `    restart: "no"`, `    restart: on-failure`), []string{`service migrate: restart "on-failure"`}},
		{"functions do not wait for it", edit(compose, "    migrate: {condition: service_completed_successfully}", "    migrate: {condition: service_started}"),
			[]string{"service clients reads DATABASE_URL but does not depend on migrate with condition service_completed_successfully"}},
		{"localstack never migrates", edit(deploycheck.LocalStackDeploy, "awslocal lambda invoke --function-name migrate", "awslocal lambda get-function --function-name migrate"),
			[]string{"does not invoke the migrate function"}},
		{"localstack serves first", func(t *testing.T, dir string) {
			mustEdit(t, filepath.Join(dir, deploycheck.LocalStackDeploy), func(s string) string {
				return strings.Replace(s, "# --- database schema", "awslocal apigateway create-rest-api --name early\n# --- database schema", 1)
			})
		}, []string{"puts up the REST API before it invokes migrate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := MustCopyTree(t, root)
			tt.break_(t, dir)
			assertHasError(t, deploycheck.CheckMigrate(context.Background(), dir), tt.want...)
		})
	}
}

func TestCheckAWSIoTFindsProblems(t *testing.T) {
	root := repoRoot(t)
	edit := func(old, new string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			mustEdit(t, filepath.Join(dir, deploycheck.TemplateFile), func(s string) string { return strings.Replace(s, old, new, 1) })
		}
	}
	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{"another rule SQL", edit("timestamp() AS received_at", "timestamp() AS at"), []string{"no AWS::IoT::TopicRule with Sql"}},
		{"another SQL version", edit(`AwsIotSqlVersion: "2016-03-23"`, `AwsIotSqlVersion: "2015-10-08"`), []string{"AwsIotSqlVersion"}},
		{"no dead-letter queue", edit("deadLetterTargetArn: !GetAtt ReadingsDeadLetterQueue.Arn", "deadLetterTargetArn: arn:aws:sqs:x"), []string{"deadLetterTargetArn"}},
		{"visibility under six function timeouts", edit("VisibilityTimeout: 360", "VisibilityTimeout: 300"), []string{"VisibilityTimeout 300s is under six times the Timeout of IngestFunction (60s)"}},
		{"whole batches retried", edit("FunctionResponseTypes: [ReportBatchItemFailures]", "FunctionResponseTypes: []"), []string{"IngestFunction", "ReportBatchItemFailures"}},
		{"nobody consumes the queue", edit("Queue: !GetAtt ReadingsQueue.Arn", "Queue: !GetAtt ReadingsDeadLetterQueue.Arn"), []string{"no function consumes ReadingsQueue"}},
		{"signed tokens", edit("SigningDisabled: true", "SigningDisabled: false"), []string{"SigningDisabled must be true"}},
		{"no invoke permission", edit("Principal: iot.amazonaws.com", "Principal: apigateway.amazonaws.com"), []string{"no AWS::Lambda::Permission lets iot.amazonaws.com invoke IoTAuthFunction"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := MustCopyTree(t, root)
			tt.break_(t, dir)
			assertHasError(t, deploycheck.CheckAWSIoT(dir), tt.want...)
		})
	}
}

func TestCheckBrokerFindsProblems(t *testing.T) {
	root := repoRoot(t)
	conf := func(dir string) string { return filepath.Join(dir, deploycheck.EMQXConfig) }
	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{
			name: "authenticator calls a route that does not exist",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, conf(dir), func(s string) string { return strings.Replace(s, "/mqtt/authn", "/mqtt/auth", 1) })
			},
			want: []string{"url path /mqtt/auth is not a POST route"},
		},
		{
			name: "no match allows",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, conf(dir), func(s string) string { return strings.Replace(s, "no_match = deny", "no_match = allow", 1) })
			},
			want: []string{"no_match = deny"},
		},
		{
			name: "a file source",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, conf(dir), func(s string) string {
					return strings.Replace(s, "  sources = [\n", "  sources = [\n    {type = file, path = \"etc/acl.conf\"},\n", 1)
				})
			},
			want: []string{"file source"},
		},
		{
			name: "config not mounted",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, deploycheck.ComposeFile), func(s string) string {
					return strings.Replace(s, ":/opt/emqx/etc/emqx.conf:ro", ":/opt/emqx/etc/other.conf:ro", 1)
				})
			},
			want: []string{"must mount infra/emqx/emqx.conf"},
		},
		{
			name: "authorizer without the secret",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, deploycheck.ComposeFile), func(s string) string {
					return strings.Replace(s, "EMQX_AUTHORIZATION__SOURCES__1__HEADERS__AUTHORIZATION: Bearer", "EMQX_AUTHORIZATION__SOURCES__1__HEADERS__X_NOTHING: Bearer", 1)
				})
			},
			want: []string{"EMQX_AUTHORIZATION__SOURCES__1__HEADERS__AUTHORIZATION"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := MustCopyTree(t, root)
			tt.break_(t, dir)
			assertHasError(t, deploycheck.CheckBroker(context.Background(), dir), tt.want...)
		})
	}
}

// ghostFunction is a function folder nobody declared.
const ghostFunction = "package main\n\nfunc main() {}\n"

// extraResource inserts a resource into the template's Resources section.
func extraResource(template, resource string) string {
	const marker = "\nResources:\n"
	i := strings.Index(template, marker)
	if i < 0 {
		return template
	}
	i += len(marker)
	return template[:i] + resource + template[i:]
}

// unquotedBracePath matches `Path: /a/{id},` inside a flow mapping, which is
// not valid YAML (TestRealTreeHasNoProblems reports it on the real file).
var unquotedBracePath = regexp.MustCompile(`(Path:[ \t]*)(/[^,"'\s]*\{[^,"'\s]*)([ \t]*,)`)

// mustQuotePaths makes the copy's template valid YAML, so each case below
// sees only the problem it introduces.
func mustQuotePaths(tb testing.TB, dir string) {
	tb.Helper()
	file := filepath.Join(dir, "template.yaml")
	data, err := os.ReadFile(file)
	require.NoError(tb, err)
	require.NoError(tb, os.WriteFile(file, unquotedBracePath.ReplaceAll(data, []byte(`${1}"${2}"${3}`)), 0o644))
}

func TestCheckTemplateFindsProblems(t *testing.T) {
	root := repoRoot(t)
	fns, err := deploycheck.FunctionDirs(root)
	require.NoError(t, err)
	require.NotEmpty(t, fns)
	existing := fns[0]

	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{
			name: "function folder without template entry",
			break_: func(t *testing.T, dir string) {
				mustWrite(t, filepath.Join(dir, "functions", "ghost", "main.go"), ghostFunction)
			},
			want: []string{"functions/ghost has no AWS::Serverless::Function"},
		},
		{
			name: "template entry without folder",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, "template.yaml"), func(s string) string {
					return extraResource(s, "  MissingFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: functions/missing/\n\n")
				})
			},
			want: []string{"MissingFunction", "functions/missing has no main.go"},
		},
		{
			name: "two functions for one folder with a duplicate route",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, "template.yaml"), func(s string) string {
					return extraResource(s, "  TwinFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: functions/"+existing+"/\n      Events:\n        Twin:\n          Type: Api\n          Properties:\n            Path: /twin/{a}\n            Method: get\n        Twin2:\n          Type: Api\n          Properties:\n            Path: /twin/{b}\n            Method: GET\n\n")
				})
			},
			want: []string{"functions/" + existing + " is the CodeUri of 2 functions"},
		},
		{
			name: "duplicate route",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, "template.yaml"), func(s string) string {
					return extraResource(s, "  TwinFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: functions/"+existing+"/\n      Events:\n        Twin:\n          Type: Api\n          Properties:\n            Path: /twin/{a}\n            Method: get\n        Twin2:\n          Type: Api\n          Properties:\n            Path: /twin/{b}\n            Method: GET\n\n")
				})
			},
			want: []string{"route GET /twin/", "declared twice"},
		},
		{
			name: "wrong runtime and handler",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, "template.yaml"), func(s string) string {
					s = strings.ReplaceAll(s, "provided.al2023", "go1.x")
					return strings.ReplaceAll(s, "Handler: bootstrap", "Handler: main")
				})
			},
			want: []string{`Runtime is "go1.x", want "provided.al2023"`},
		},
		{
			name: "wrong handler",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, "template.yaml"), func(s string) string {
					return strings.ReplaceAll(s, "Handler: bootstrap", "Handler: main")
				})
			},
			want: []string{`Handler is "main", want "bootstrap"`},
		},
		{
			name:   "unparseable template",
			break_: func(t *testing.T, dir string) { mustWrite(t, filepath.Join(dir, "template.yaml"), "Resources: [\n") },
			want:   []string{"template.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := MustCopyTree(t, root)
			mustQuotePaths(t, dir)
			tt.break_(t, dir)
			assertHasError(t, deploycheck.CheckTemplate(dir), tt.want...)
		})
	}
}

func TestQuotedCopyOfTemplateIsClean(t *testing.T) {
	// Guards the cases above: before they break it, the copy has no problem
	// but (perhaps) the quoting the real file needs.
	dir := MustCopyTree(t, repoRoot(t))
	mustQuotePaths(t, dir)
	assert.Empty(t, deploycheck.CheckTemplate(dir))
}

// skipBuildIfShort skips t under -short (make test-unit): building every
// function takes minutes on a loaded machine.
func skipBuildIfShort(t *testing.T) {
	if testing.Short() {
		t.Skip("go build of every function takes minutes, so not run with -short (make test-unit)")
	}
}

func TestCheckBuildFindsBrokenFunction(t *testing.T) {
	skipBuildIfShort(t)
	dir := mustCopySources(t, repoRoot(t))
	mustWrite(t, filepath.Join(dir, "functions", "ghost", "main.go"), "package main\n\nfunc main() { undefinedCall() }\n")
	assertHasError(t, deploycheck.CheckBuild(context.Background(), dir, t.TempDir()), "functions/ghost", "undefined")
}

func TestCheckComposeFindsProblems(t *testing.T) {
	root := repoRoot(t)
	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{
			name: "function folder without service",
			break_: func(t *testing.T, dir string) {
				mustWrite(t, filepath.Join(dir, "functions", "ghost", "main.go"), ghostFunction)
			},
			want: []string{`functions/ghost has no compose service "ghost"`},
		},
		{
			name: "function Dockerfile removed",
			break_: func(t *testing.T, dir string) {
				require.NoError(t, os.Remove(filepath.Join(dir, deploycheck.FunctionDocker)))
			},
			want: []string{"Dockerfile infra/docker/function.Dockerfile does not exist"},
		},
		{
			name: "Dockerfile copies a missing folder",
			break_: func(t *testing.T, dir string) {
				require.NoError(t, os.RemoveAll(filepath.Join(dir, "shared")))
			},
			want: []string{"function.Dockerfile", "source shared/ is not in the build context"},
		},
		{
			name: "service for a function that does not exist",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, deploycheck.ComposeFile), func(s string) string {
					return strings.Replace(s, "\nservices:\n", "\nservices:\n  phantom:\n    build: {context: ., dockerfile: infra/docker/function.Dockerfile, args: {FUNCTION: phantom}}\n", 1)
				})
			},
			want: []string{`service "phantom": FUNCTION=phantom but functions/phantom/main.go does not exist`},
		},
		{
			name: "depends_on an unknown service",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, deploycheck.ComposeFile), func(s string) string {
					return strings.Replace(s, "\nservices:\n", "\nservices:\n  lonely:\n    image: busybox\n    depends_on: [nowhere]\n", 1)
				})
			},
			want: []string{"nowhere"},
		},
		{
			name: "mounted config missing",
			break_: func(t *testing.T, dir string) {
				require.NoError(t, os.Remove(filepath.Join(dir, "infra", "monitoring", "prometheus.yml")))
			},
			want: []string{`service "prometheus" mounts infra/monitoring/prometheus.yml, which does not exist`},
		},
		{
			name: "a broker secret with a default",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, deploycheck.ComposeFile), func(s string) string {
					return strings.Replace(s, "\nservices:\n", "\nservices:\n  leaky:\n    image: busybox\n    environment:\n      MQTT_BRIDGE_PASSWORD: ${MQTT_BRIDGE_PASSWORD:-published}\n", 1)
				})
			},
			want: []string{"${MQTT_BRIDGE_PASSWORD:-...} must require the secret"},
		},
		{
			name: "redis published on every interface",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, deploycheck.ComposeFile), func(s string) string {
					return strings.Replace(s, `"127.0.0.1:6379:6379"`, `"6379:6379"`, 1)
				})
			},
			want: []string{"service redis publishes port 6379 on every interface"},
		},
		{
			name: "a broker secret taken as it is",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, deploycheck.ComposeFile), func(s string) string {
					return strings.Replace(s, "\nservices:\n", "\nservices:\n  lax:\n    image: busybox\n    environment:\n      MQTT_BROKER_SECRET: ${MQTT_BROKER_SECRET}\n", 1)
				})
			},
			want: []string{"${MQTT_BROKER_SECRET...} must require the secret"},
		},
		{
			name: "invalid compose file",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, deploycheck.ComposeFile), func(s string) string {
					return strings.Replace(s, "\nservices:\n", "\nservices:\n  bad:\n    image: busybox\n    ports: {oops: 1}\n", 1)
				})
			},
			want: []string{deploycheck.ComposeFile},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := MustCopyTree(t, root)
			tt.break_(t, dir)
			assertHasError(t, deploycheck.CheckCompose(context.Background(), dir), tt.want...)
		})
	}
}

func TestCheckLocalStackFindsProblems(t *testing.T) {
	root := repoRoot(t)
	deploy := filepath.Join("localstack", "init", "ready.d", "10-deploy.sh")
	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{
			name:   "script not executable",
			break_: func(t *testing.T, dir string) { require.NoError(t, os.Chmod(filepath.Join(dir, deploy), 0o644)) },
			want:   []string{"10-deploy.sh is not executable"},
		},
		{
			name: "script syntax error",
			break_: func(t *testing.T, dir string) {
				mustEdit(t, filepath.Join(dir, deploy), func(s string) string { return s + "\nif then fi\n" })
			},
			want: []string{"bash -n localstack/init/ready.d/10-deploy.sh"},
		},
		{
			name:   "deploy script missing",
			break_: func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, deploy))) },
			want:   []string{"localstack/init/ready.d holds no .sh deploy script"},
		},
		{
			name: "localstack compose mounts a missing folder",
			break_: func(t *testing.T, dir string) {
				require.NoError(t, os.RemoveAll(filepath.Join(dir, "localstack", "init", "ready.d")))
			},
			want: []string{`mounts localstack/init/ready.d, which does not exist`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := MustCopyTree(t, root)
			tt.break_(t, dir)
			assertHasError(t, deploycheck.CheckLocalStack(context.Background(), dir), tt.want...)
		})
	}
}
