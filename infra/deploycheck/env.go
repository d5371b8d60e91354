package deploycheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

// Reads is what one function reads from its environment: Required must be
// given by every deployment (no default serves outside a laptop), Optional
// may be.
type Reads struct {
	Required []string
	Optional []string
}

func (r Reads) has(name string) bool {
	return slices.Contains(r.Required, name) || slices.Contains(r.Optional, name)
}

// The variables shared code reads for a function (shared/app.Load and its
// Needs); deploycheck's tests compare them with what app.Load asks for.
var (
	// CoreEnv is what app.Load reads for every function it serves.
	CoreEnv = Reads{Required: []string{"DATABASE_URL", "REDIS_URL"}, Optional: []string{"REDIS_PREFIX", "LOG_LEVEL"}}
	// VerifierEnv is app.VerifiesTokens: public keys only.
	VerifierEnv = Reads{Required: []string{"JWT_PUBLIC_KEYS"}, Optional: []string{"JWT_ISSUER", "JWT_AUDIENCE"}}
	// SignerEnv is app.SignsTokens: the auth function's private keys.
	SignerEnv = Reads{Required: []string{"JWT_SIGNING_KEYS"},
		Optional: []string{"JWT_ACTIVE_KID", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_ACCESS_TTL", "JWT_REFRESH_TTL"}}
	// MetricsEnv is shared/lambdahttp's: where the process serves its
	// metrics for a scrape (compose; unset on Lambda).
	MetricsEnv = Reads{Optional: []string{"METRICS_ADDR"}}
	// MongoEnv is app.Needs.Mongo (and the ingest function's own MongoDB).
	MongoEnv = Reads{Required: []string{"MONGODB_URL"}, Optional: []string{"MONGODB_DATABASE"}}
)

func reads(parts ...Reads) Reads {
	var r Reads
	for _, p := range parts {
		r.Required = append(r.Required, p.Required...)
		r.Optional = append(r.Optional, p.Optional...)
	}
	return r
}

// FunctionEnv is what each function's main reads (through app.Needs, its
// Config closure and the loaders it calls): the only variables template.yaml,
// docker-compose.yml and the LocalStack deploy may give it (least privilege).
// A new variable a main reads goes here first.
var FunctionEnv = map[string]Reads{
	"alarms":       reads(CoreEnv, MetricsEnv, VerifierEnv),
	"archive":      reads(CoreEnv, MetricsEnv, VerifierEnv, MongoEnv, Reads{Optional: []string{"DEAD_LETTER_TTL"}}),
	"auth":         reads(CoreEnv, MetricsEnv, SignerEnv),
	"clients":      reads(CoreEnv, MetricsEnv, VerifierEnv),
	"console":      reads(MetricsEnv, Reads{Optional: []string{"LOG_LEVEL"}}),
	"ingest":       reads(CoreEnv, MetricsEnv, MongoEnv, Reads{Optional: []string{"INGEST_MAX_FUTURE", "INGEST_MAX_AGE", "INGEST_ARCHIVE_TIMEOUT", "GOGC"}}),
	"iotauth":      CoreEnv,
	"measurements": reads(CoreEnv, MetricsEnv, VerifierEnv),
	"migrate":      {Required: []string{"DATABASE_URL"}},
	// emqx.LoadConfig and deviceauth.LoadBridge.
	"mqttauth": reads(CoreEnv, MetricsEnv, Reads{Required: []string{"MQTT_BROKER_SECRET", "MQTT_BRIDGE_PASSWORD"},
		Optional: []string{"MQTT_DEVICE_SESSION_MAX", "MQTT_BRIDGE_USERNAME", "MQTT_BRIDGE_CLIENT_ID_PREFIX"}}),
	"openapi":    reads(MetricsEnv, Reads{Optional: []string{"LOG_LEVEL"}}),
	"readings":   reads(CoreEnv, MetricsEnv, VerifierEnv, Reads{Optional: []string{"LATEST_LOCAL_TTL"}}),
	"sensors":    reads(CoreEnv, MetricsEnv, VerifierEnv),
	"statistics": reads(CoreEnv, MetricsEnv, VerifierEnv),
	"users":      reads(CoreEnv, MetricsEnv, VerifierEnv),
}

// TokenKeyVariables carry the token keys: none of them may have a default in
// a deployment file.
var TokenKeyVariables = []string{"JWT_SIGNING_KEYS", "JWT_PUBLIC_KEYS"}

// checkEnv reports each variable of env that function name does not read,
// and each required one missing. where names the file and the function.
func checkEnv(where, name string, env []string) []error {
	r, ok := FunctionEnv[name]
	if !ok {
		return []error{fmt.Errorf("%s: functions/%s has no entry in deploycheck.FunctionEnv: list what its main reads", where, name)}
	}
	var errs []error
	for _, v := range env {
		if !r.has(v) {
			errs = append(errs, fmt.Errorf("%s gets %s, which functions/%s does not read: remove it (least privilege)", where, v, name))
		}
	}
	for _, v := range r.Required {
		if !slices.Contains(env, v) {
			errs = append(errs, fmt.Errorf("%s lacks %s, which functions/%s requires", where, v, name))
		}
	}
	return errs
}

// CheckEnvironment checks that each function of template.yaml and each
// function service of docker-compose.yml gets exactly what its main reads
// (FunctionEnv: nothing more, every required variable), that the LocalStack
// deploy takes each function's variables from the template, and that no
// token key has a default anywhere (PublishedKeys).
func CheckEnvironment(ctx context.Context, root string) []error {
	var errs []error
	tpl, err := sam.Load(filepath.Join(root, TemplateFile))
	if err != nil {
		return []error{err}
	}
	for _, f := range tpl.Functions {
		names := make([]string, 0, len(f.Env))
		for _, v := range f.Env {
			names = append(names, v.Name)
		}
		errs = append(errs, checkEnv(TemplateFile+": "+f.LogicalID, f.Name, names)...)
	}
	p, err := loadCompose(ctx, root, ComposeFile)
	if err != nil {
		return append(errs, err)
	}
	dirs, err := FunctionDirs(root)
	if err != nil {
		return append(errs, err)
	}
	for _, d := range dirs {
		svc, ok := p.Services[d]
		if !ok {
			continue // CheckCompose reports it
		}
		names := make([]string, 0, len(svc.Environment))
		for k := range svc.Environment {
			names = append(names, k)
		}
		sort.Strings(names)
		errs = append(errs, checkEnv(ComposeFile+": service "+d, d, names)...)
	}
	if script, err := os.ReadFile(filepath.Join(root, LocalStackDeploy)); err != nil {
		errs = append(errs, err)
	} else if !strings.Contains(string(script), `done <"$BUILD/env.txt"`) || strings.Count(string(script), `--environment "$(env_json "$fn")"`) != strings.Count(string(script), "--environment") {
		errs = append(errs, fmt.Errorf("%s must build each function's Environment from $BUILD/env.txt (template.yaml's variables of that function): read it in env_json and pass --environment \"$(env_json \"$fn\")\"", LocalStackDeploy))
	}
	return append(errs, PublishedKeys(root)...)
}

// keyDefault matches a shell or compose default of a token key variable,
// ${NAME:-value} or ${NAME-value} with a value, capturing the name.
var keyDefault = regexp.MustCompile(`\$\{((?:TEMPWATCH_)?JWT_[A-Z_]*KEYS)(?::?-)([^}]+)\}`)

// keyLiteral matches what looks like a key written out: kid:<40 or more
// base64 characters>, as the old published HMAC key was.
var keyLiteral = regexp.MustCompile(`\b[A-Za-z0-9._-]+:[A-Za-z0-9+/_-]{40,}={0,2}`)

// deploymentFiles are the files PublishedKeys reads, besides the shell
// scripts under localstack/ and infra/scripts/.
var deploymentFiles = []string{TemplateFile, ComposeFile, LocalStackCompose, "Makefile"}

// PublishedKeys reports a token key default or a written-out key in a
// deployment file, and a template parameter carrying token keys with a
// Default: whoever reads the repository could sign with a published key, or
// verify against one.
func PublishedKeys(root string) []error {
	files := slices.Clone(deploymentFiles)
	for _, dir := range []string{"localstack", filepath.Join("infra", "scripts")} {
		_ = filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".sh") {
				files = append(files, rel(root, p))
			}
			if err == nil && d.IsDir() && d.Name() == "build" {
				return filepath.SkipDir
			}
			return nil
		})
	}
	var errs []error
	for _, f := range files {
		text, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			if !os.IsNotExist(err) {
				errs = append(errs, err)
			}
			continue
		}
		for _, m := range keyDefault.FindAllStringSubmatch(string(text), -1) {
			errs = append(errs, fmt.Errorf("%s: ${%s:-...} gives a token key a default: a key in the repository is a published key; require it or generate one", f, m[1]))
		}
		for _, m := range keyLiteral.FindAllString(string(text), -1) {
			kid, _, _ := strings.Cut(m, ":")
			errs = append(errs, fmt.Errorf("%s: %q followed by a long base64 value looks like a key written into the file: generate keys (make keys), never publish one", f, kid+":"))
		}
	}
	tpl, err := os.ReadFile(filepath.Join(root, TemplateFile))
	if err != nil {
		return append(errs, err)
	}
	errs = append(errs, templateKeyDefaults(tpl)...)
	return errs
}

// templateKeyDefaults reports each template parameter whose name speaks of
// JWT keys and that has a non-empty Default.
func templateKeyDefaults(text []byte) []error {
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil || len(doc.Content) == 0 {
		return nil // CheckTemplate reports it
	}
	params := sam.Get(doc.Content[0], "Parameters")
	var errs []error
	for i := 0; params != nil && i+1 < len(params.Content); i += 2 {
		name := params.Content[i].Value
		if !strings.HasPrefix(name, "Jwt") || !strings.Contains(name, "Key") {
			continue
		}
		if def := sam.Scalar(sam.Get(params.Content[i+1], "Default")); def != "" {
			errs = append(errs, fmt.Errorf("%s: parameter %s has a Default: a key in the template is a published key", TemplateFile, name))
		}
	}
	return errs
}
