// Package deploycheck checks that the deployment files agree with the code:
// template.yaml, docker-compose.yml, the Dockerfiles and the LocalStack
// scripts. Each check takes the repository root and returns every problem it
// finds, so tests can run it on the real tree (expecting none) and on broken
// copies (expecting the named problem).
package deploycheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

// Runtime and Handler every function must declare (directly or via Globals).
const (
	Runtime = "provided.al2023"
	Handler = "bootstrap"
)

// Well-known files, relative to the repository root.
const (
	TemplateFile      = "template.yaml"
	ComposeFile       = "docker-compose.yml"
	LocalStackCompose = "localstack/docker-compose.localstack.yml"
	FunctionDocker    = "infra/docker/function.Dockerfile"
)

// generatedMounts are bind-mount sources that a build step creates, so they
// need not exist in a fresh checkout.
var generatedMounts = []string{"localstack/build"}

// FunctionDirs lists the folder names under functions/ that hold a main.go.
func FunctionDirs(root string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && fileExists(filepath.Join(root, "functions", e.Name(), "main.go")) {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs, nil
}

// CheckTemplate checks template.yaml against functions/: one
// AWS::Serverless::Function per function folder, with CodeUri that folder,
// runtime provided.al2023 and handler bootstrap, and no METHOD PATH declared
// twice.
func CheckTemplate(root string) []error {
	tpl, err := sam.Load(filepath.Join(root, TemplateFile))
	if err != nil {
		return []error{err}
	}
	dirs, err := FunctionDirs(root)
	if err != nil {
		return []error{err}
	}
	var errs []error
	byFolder := map[string][]string{}
	for _, f := range tpl.Functions {
		folder := path.Clean(strings.TrimPrefix(f.CodeURI, "./"))
		if dir, name := path.Split(folder); dir != "functions/" {
			errs = append(errs, fmt.Errorf("%s: CodeUri %q is not a folder functions/<name>/", f.LogicalID, f.CodeURI))
		} else {
			byFolder[name] = append(byFolder[name], f.LogicalID)
			if !fileExists(filepath.Join(root, folder, "main.go")) {
				errs = append(errs, fmt.Errorf("%s: CodeUri %s has no main.go (folder missing?)", f.LogicalID, folder))
			}
		}
		if f.Runtime != Runtime {
			errs = append(errs, fmt.Errorf("%s: Runtime is %q, want %q", f.LogicalID, f.Runtime, Runtime))
		}
		if f.Handler != Handler {
			errs = append(errs, fmt.Errorf("%s: Handler is %q, want %q", f.LogicalID, f.Handler, Handler))
		}
	}
	for _, d := range dirs {
		switch ids := byFolder[d]; len(ids) {
		case 0:
			errs = append(errs, fmt.Errorf("functions/%s has no AWS::Serverless::Function in %s", d, TemplateFile))
		case 1:
		default:
			sort.Strings(ids)
			errs = append(errs, fmt.Errorf("functions/%s is the CodeUri of %d functions: %s", d, len(ids), strings.Join(ids, ", ")))
		}
	}
	seen := map[string]sam.Route{}
	for _, r := range tpl.Routes() {
		key := r.Method + " " + paramsBlank(r.Path)
		if prev, ok := seen[key]; ok {
			errs = append(errs, fmt.Errorf("route %s %s is declared twice (%s.%s and %s.%s)", r.Method, r.Path, prev.Function, prev.Event, r.Function, r.Event))
			continue
		}
		seen[key] = r
	}
	return errs
}

// paramsBlank makes /a/{id} and /a/{name} the same route, as API Gateway does.
func paramsBlank(p string) string {
	segs := strings.Split(strings.TrimSuffix(p, "/"), "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

// CheckBuild compiles every function as the Lambda build does (static,
// CGO_ENABLED=0) into outDir, in one go build for speed.
func CheckBuild(ctx context.Context, root, outDir string) []error {
	dirs, err := FunctionDirs(root)
	if err != nil {
		return []error{err}
	}
	if len(dirs) == 0 {
		return []error{errors.New("no function folders with a main.go under functions/")}
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", outDir+string(filepath.Separator), "./functions/...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return []error{fmt.Errorf("go build ./functions/...: %w\n%s", err, out)}
	}
	var errs []error
	for _, d := range dirs {
		if !fileExists(filepath.Join(outDir, d)) {
			errs = append(errs, fmt.Errorf("functions/%s: go build produced no binary", d))
		}
	}
	return errs
}

// RequiredSecrets are the variables docker-compose.yml must require from
// the operator (${NAME:?...}): a default written in the file is published
// with it, so anyone who reads the repository could use it.
var RequiredSecrets = []string{"MQTT_BROKER_SECRET", "MQTT_BRIDGE_PASSWORD", "EMQX_NODE_COOKIE", "EMQX_DASHBOARD_PASSWORD",
	"JWT_SIGNING_KEYS", "JWT_PUBLIC_KEYS", "SIMULATOR_ADMIN_PASSWORD"}

// composeVariable matches a variable reference, ${NAME} or ${NAME<op>...},
// capturing the name and the operator (:?, ?, :-, -, :+, +).
var composeVariable = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[?+-])?`)

// loadCompose parses a compose file the way docker compose does (all profiles
// enabled, variables at their defaults, not the caller's environment). A
// variable the file requires (${NAME:?...}) gets a placeholder, as an
// operator's .env would give it a value.
func loadCompose(ctx context.Context, root, file string) (*types.Project, error) {
	abs := filepath.Join(root, file)
	text, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	env := []string{}
	for _, m := range composeVariable.FindAllStringSubmatch(string(text), -1) {
		if strings.HasSuffix(m[2], "?") {
			env = append(env, m[1]+"=deploycheck-placeholder-"+strings.ToLower(m[1]))
		}
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithName("tempwatch"),
		cli.WithProfiles([]string{"*"}),
		cli.WithEnv(env),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

// CheckCompose checks docker-compose.yml: the generic file checks, plus one
// service per function folder, named after it and built from
// function.Dockerfile with FUNCTION=<folder> (the gateway relies on the name),
// and every use of a RequiredSecrets variable required, never defaulted.
func CheckCompose(ctx context.Context, root string) []error {
	p, err := loadCompose(ctx, root, ComposeFile)
	if err != nil {
		return []error{err}
	}
	errs := checkProject(root, ComposeFile, p)
	errs = append(errs, checkRequiredSecrets(root, ComposeFile)...)
	errs = append(errs, checkLoopbackPorts(p)...)
	dirs, err := FunctionDirs(root)
	if err != nil {
		return append(errs, err)
	}
	for _, d := range dirs {
		svc, ok := p.Services[d]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: functions/%s has no compose service %q", ComposeFile, d, d))
		case svc.Build == nil || svc.Build.Args["FUNCTION"] == nil || *svc.Build.Args["FUNCTION"] != d:
			errs = append(errs, fmt.Errorf("%s: service %q must build %s with FUNCTION=%s", ComposeFile, d, FunctionDocker, d))
		}
	}
	return errs
}

// PublicPorts are the only published ports of docker-compose.yml that
// listen beyond the host itself: devices' MQTT and the REST API. The data
// stores, the broker's dashboard, metrics and dashboards are for the
// operator on the host (PostgreSQL, MongoDB and Redis take any client that
// reaches them; a Redis write could make up a device key).
var PublicPorts = []string{"emqx:1883", "gateway:3000"}

// checkLoopbackPorts reports each published port not in PublicPorts that
// is not bound to 127.0.0.1.
func checkLoopbackPorts(p *types.Project) []error {
	var errs []error
	for name, svc := range p.Services {
		for _, port := range svc.Ports {
			if port.HostIP != "127.0.0.1" && !slices.Contains(PublicPorts, fmt.Sprintf("%s:%d", name, port.Target)) {
				errs = append(errs, fmt.Errorf("%s: service %s publishes port %d on every interface: bind it to 127.0.0.1 (\"127.0.0.1:%s:%d\")",
					ComposeFile, name, port.Target, port.Published, port.Target))
			}
		}
	}
	return errs
}

// checkRequiredSecrets reports each reference to a RequiredSecrets variable
// in file that is not ${NAME:?...} or ${NAME?...}.
func checkRequiredSecrets(root, file string) []error {
	text, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, m := range composeVariable.FindAllStringSubmatch(string(text), -1) {
		if slices.Contains(RequiredSecrets, m[1]) && !strings.HasSuffix(m[2], "?") {
			errs = append(errs, fmt.Errorf("%s: ${%s%s...} must require the secret (${%s:?...}): a default in the file is a published secret", file, m[1], m[2], m[1]))
		}
	}
	return errs
}

// EMQXConfig is the broker configuration docker-compose.yml mounts into
// its emqx service.
const EMQXConfig = "infra/emqx/emqx.conf"

// gatewayURL matches a url setting of EMQXConfig that calls the compose
// gateway, capturing the path.
var gatewayURL = regexp.MustCompile(`(?m)^\s*url\s*=\s*"http://gateway:3000(/[^"?]*)[^"]*"`)

// CheckBroker checks that the broker asks functions that exist and refuses
// what they do not allow: every gateway url in EMQXConfig is a POST route
// of template.yaml, authorization ends in no_match = deny with no file
// source, and the compose emqx service mounts the file and sends the
// broker secret as the bearer token of both its authenticator and its
// authorizer.
func CheckBroker(ctx context.Context, root string) []error {
	conf, err := os.ReadFile(filepath.Join(root, EMQXConfig))
	if err != nil {
		return []error{err}
	}
	tpl, err := sam.Load(filepath.Join(root, TemplateFile))
	if err != nil {
		return []error{err}
	}
	posts := map[string]bool{}
	for _, r := range tpl.Routes() {
		if r.Method == "POST" {
			posts[r.Path] = true
		}
	}
	var errs []error
	urls := gatewayURL.FindAllStringSubmatch(string(conf), -1)
	if len(urls) < 2 {
		errs = append(errs, fmt.Errorf("%s: want the authenticator and the authorizer to call the gateway, found %d gateway urls", EMQXConfig, len(urls)))
	}
	for _, m := range urls {
		if !posts[m[1]] {
			errs = append(errs, fmt.Errorf("%s: url path %s is not a POST route of %s", EMQXConfig, m[1], TemplateFile))
		}
	}
	if !regexp.MustCompile(`(?m)^\s*no_match\s*=\s*deny\s*$`).Match(conf) {
		errs = append(errs, fmt.Errorf("%s: authorization must end in no_match = deny", EMQXConfig))
	}
	if regexp.MustCompile(`\btype\s*=\s*"?file\b`).Match(conf) {
		errs = append(errs, fmt.Errorf("%s: an authorization file source (EMQX's acl.conf) allows what it does not name", EMQXConfig))
	}

	p, err := loadCompose(ctx, root, ComposeFile)
	if err != nil {
		return append(errs, err)
	}
	svc, ok := p.Services["emqx"]
	if !ok {
		return append(errs, fmt.Errorf("%s: no emqx service", ComposeFile))
	}
	mounted := false
	for _, v := range svc.Volumes {
		mounted = mounted || (v.Type == types.VolumeTypeBind && rel(root, v.Source) == EMQXConfig && v.Target == "/opt/emqx/etc/emqx.conf")
	}
	if !mounted {
		errs = append(errs, fmt.Errorf("%s: service emqx must mount %s as /opt/emqx/etc/emqx.conf", ComposeFile, EMQXConfig))
	}
	for _, name := range []string{"EMQX_AUTHENTICATION__1__HEADERS__AUTHORIZATION", "EMQX_AUTHORIZATION__SOURCES__1__HEADERS__AUTHORIZATION"} {
		if v := svc.Environment[name]; v == nil || *v != "Bearer deploycheck-placeholder-mqtt_broker_secret" {
			errs = append(errs, fmt.Errorf("%s: service emqx must set %s to Bearer ${MQTT_BROKER_SECRET:?...}", ComposeFile, name))
		}
	}
	return errs
}

// serviceNames lists p's services by name, so problems come in a stable order.
func serviceNames(p *types.Project) []string {
	names := make([]string, 0, len(p.Services))
	for name := range p.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// checkComposeFile runs the generic checks on any compose file.
func checkComposeFile(ctx context.Context, root, file string) []error {
	p, err := loadCompose(ctx, root, file)
	if err != nil {
		return []error{err}
	}
	return checkProject(root, file, p)
}

// checkProject: build contexts and Dockerfiles exist (and what the Dockerfiles
// COPY from the context), a function.Dockerfile build names an existing
// function, depends_on names services, and bind-mounted repository files exist.
func checkProject(root, file string, p *types.Project) []error {
	var errs []error
	names := serviceNames(p)
	checkedDockerfiles := map[string]bool{}
	for _, name := range names {
		svc := p.Services[name]
		if svc.Build != nil {
			ctxDir := svc.Build.Context
			if !dirExists(ctxDir) {
				errs = append(errs, fmt.Errorf("%s: service %q: build context %s does not exist", file, name, rel(root, ctxDir)))
			}
			dockerfile := svc.Build.Dockerfile
			if dockerfile == "" {
				dockerfile = "Dockerfile"
			}
			if !filepath.IsAbs(dockerfile) {
				dockerfile = filepath.Join(ctxDir, dockerfile)
			}
			switch {
			case !fileExists(dockerfile):
				errs = append(errs, fmt.Errorf("%s: service %q: Dockerfile %s does not exist", file, name, rel(root, dockerfile)))
			case !checkedDockerfiles[dockerfile+"\x00"+ctxDir]:
				checkedDockerfiles[dockerfile+"\x00"+ctxDir] = true
				errs = append(errs, checkDockerfile(dockerfile, ctxDir)...)
			}
			if filepath.Base(dockerfile) == filepath.Base(FunctionDocker) {
				fn := svc.Build.Args["FUNCTION"]
				if fn == nil || *fn == "" {
					errs = append(errs, fmt.Errorf("%s: service %q builds %s without build arg FUNCTION", file, name, FunctionDocker))
				} else if !fileExists(filepath.Join(ctxDir, "functions", *fn, "main.go")) {
					errs = append(errs, fmt.Errorf("%s: service %q: FUNCTION=%s but functions/%s/main.go does not exist", file, name, *fn, *fn))
				}
			}
		}
		deps := make([]string, 0, len(svc.DependsOn))
		for dep := range svc.DependsOn {
			deps = append(deps, dep)
		}
		sort.Strings(deps)
		for _, dep := range deps {
			if _, ok := p.Services[dep]; !ok {
				errs = append(errs, fmt.Errorf("%s: service %q depends on unknown service %q", file, name, dep))
			}
		}
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			src := v.Source
			r, err := filepath.Rel(root, src)
			if err != nil || strings.HasPrefix(r, "..") || isGenerated(r) {
				continue // outside the repository (e.g. the Docker socket) or built later
			}
			if _, err := os.Stat(src); err != nil {
				errs = append(errs, fmt.Errorf("%s: service %q mounts %s, which does not exist", file, name, filepath.ToSlash(r)))
			}
		}
	}
	return errs
}

// checkDockerfile checks that every COPY/ADD source taken from the build
// context exists (globs must match something).
func checkDockerfile(dockerfile, ctxDir string) []error {
	f, err := os.Open(dockerfile)
	if err != nil {
		return []error{err}
	}
	defer f.Close()
	var errs []error
	var instr strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			instr.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		instr.WriteString(line)
		errs = append(errs, checkCopy(dockerfile, ctxDir, instr.String())...)
		instr.Reset()
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func checkCopy(dockerfile, ctxDir, instr string) []error {
	fields := strings.Fields(instr)
	if len(fields) < 3 {
		return nil
	}
	if op := strings.ToUpper(fields[0]); op != "COPY" && op != "ADD" {
		return nil
	}
	args := fields[1:]
	for len(args) > 0 && strings.HasPrefix(args[0], "--") {
		if strings.HasPrefix(args[0], "--from=") {
			return nil // copies from another stage or image
		}
		args = args[1:]
	}
	if len(args) < 2 || strings.HasPrefix(args[0], "[") {
		return nil
	}
	var errs []error
	for _, src := range args[:len(args)-1] {
		if strings.Contains(src, "$") || strings.Contains(src, "://") {
			continue
		}
		matches, err := filepath.Glob(filepath.Join(ctxDir, filepath.FromSlash(src)))
		if err != nil || len(matches) == 0 {
			errs = append(errs, fmt.Errorf("%s: %s: source %s is not in the build context", filepath.Base(dockerfile), fields[0], src))
		}
	}
	return errs
}

// CheckLocalStack checks the LocalStack files: the compose file, and that
// every script under localstack/ is executable and passes bash -n.
func CheckLocalStack(ctx context.Context, root string) []error {
	var errs []error
	if fileExists(filepath.Join(root, LocalStackCompose)) {
		errs = append(errs, checkComposeFile(ctx, root, LocalStackCompose)...)
	} else {
		errs = append(errs, fmt.Errorf("%s does not exist", LocalStackCompose))
	}
	var scripts []string
	err := filepath.WalkDir(filepath.Join(root, "localstack"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "build" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".sh") {
			scripts = append(scripts, p)
		}
		return nil
	})
	if err != nil {
		return append(errs, fmt.Errorf("list localstack scripts: %w", err))
	}
	if !hasPrefixAny(scripts, filepath.Join(root, "localstack", "init", "ready.d")) {
		errs = append(errs, errors.New("localstack/init/ready.d holds no .sh deploy script"))
	}
	for _, s := range scripts {
		name := rel(root, s)
		info, err := os.Stat(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if info.Mode()&0o111 == 0 {
			errs = append(errs, fmt.Errorf("%s is not executable", name))
		}
		if out, err := exec.CommandContext(ctx, "bash", "-n", s).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("bash -n %s: %v: %s", name, err, strings.TrimSpace(string(out))))
		}
	}
	return errs
}

func hasPrefixAny(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

func isGenerated(relPath string) bool {
	relPath = filepath.ToSlash(relPath)
	for _, g := range generatedMounts {
		if relPath == g || strings.HasPrefix(relPath, g+"/") {
			return true
		}
	}
	return false
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return filepath.ToSlash(r)
	}
	return p
}

func fileExists(p string) bool {
	info, err := os.Stat(p)
	return err == nil && !info.IsDir()
}

func dirExists(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.IsDir()
}
