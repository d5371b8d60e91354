package deploycheck

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// DockerBuild is one image build: a Dockerfile and its build args.
type DockerBuild struct {
	Dockerfile string            // relative to the repository root
	Args       map[string]string // build args, as compose passes them
	// Runs are the exec-form commands compose runs in the image, its
	// services' entrypoints and healthchecks (their binaries must be in it).
	Runs [][]string
}

func (b DockerBuild) String() string {
	keys := make([]string, 0, len(b.Args))
	for k := range b.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := b.Dockerfile
	for _, k := range keys {
		s += fmt.Sprintf(" --build-arg %s=%s", k, b.Args[k])
	}
	return s
}

// DockerBuilds lists one build per Dockerfile under DockerDir: the build
// args of the first compose service (by name) that builds it, or none if no
// service does. Services that differ only in build args (one per function)
// run the same instructions, so one build of each stands for them; the
// entrypoints and healthchecks are those of every service built from it.
func DockerBuilds(ctx context.Context, root string) ([]DockerBuild, error) {
	p, err := loadCompose(ctx, root, ComposeFile)
	if err != nil {
		return nil, err
	}
	files, err := Dockerfiles(root)
	if err != nil {
		return nil, err
	}
	byFile := map[string]*DockerBuild{}
	for _, f := range files {
		byFile[rel(root, f)] = &DockerBuild{Dockerfile: rel(root, f), Args: map[string]string{}}
	}
	names := serviceNames(p)
	used := map[string]bool{}
	for _, name := range names {
		svc := p.Services[name]
		if svc.Build == nil || rel(root, svc.Build.Context) != "." {
			continue
		}
		file := svc.Build.Dockerfile
		if !filepath.IsAbs(file) {
			file = filepath.Join(svc.Build.Context, file)
		}
		b := byFile[rel(root, file)]
		if b == nil {
			continue // not under DockerDir: checkProject checks its COPY sources
		}
		if !used[b.Dockerfile] {
			used[b.Dockerfile] = true
			for k, v := range svc.Build.Args {
				if v != nil {
					b.Args[k] = *v
				}
			}
		}
		if hc := svc.HealthCheck; hc != nil && len(hc.Test) > 1 && hc.Test[0] == "CMD" {
			b.Runs = append(b.Runs, hc.Test[1:])
		}
		if len(svc.Entrypoint) > 0 {
			b.Runs = append(b.Runs, svc.Entrypoint)
		}
	}
	out := make([]DockerBuild, 0, len(files))
	for _, f := range files {
		out = append(out, *byFile[rel(root, f)])
	}
	return out, nil
}

// CheckDockerBuild rebuilds what one image build would, without an engine:
// in scratch, one folder per stage stands for its file system; each COPY
// from the build context (root, less what .dockerignore excludes) copies
// what it names to where it names, each COPY --from copies from its stage's
// folder (a file the stage did not make is a problem), and each RUN of a
// golang stage runs on this machine with the stage's ARGs and ENV, the
// container paths it uses (WORKDIR, what later stages copy out) moved into
// the stage's folder. Then the final image's ENTRYPOINT and HEALTHCHECK
// binaries, and those compose runs in it (b.Runs), must exist. So a folder a Dockerfile forgets to COPY fails its
// go build here as it would in docker build.
func CheckDockerBuild(ctx context.Context, root, scratch string, b DockerBuild) []error {
	where := b.String()
	df, err := ParseDockerfile(filepath.Join(root, b.Dockerfile))
	if err != nil {
		return []error{err}
	}
	ignore, err := loadDockerignore(root)
	if err != nil {
		return []error{err}
	}
	s := &simulation{root: root, scratch: scratch, df: df, ignore: ignore, where: where}
	for i := range df.Stages {
		if err := s.stage(ctx, i, b.Args); err != nil {
			return []error{err}
		}
	}
	final := s.rootfs(len(df.Stages) - 1)
	var errs []error
	var execs [][]string
	for _, in := range df.Stages[len(df.Stages)-1].Instructions {
		switch in.Op {
		case "ENTRYPOINT":
			execs = append(execs, execForm(in.Args))
		case "HEALTHCHECK":
			if i := strings.Index(in.Args, "CMD "); i >= 0 {
				execs = append(execs, execForm(in.Args[i+4:]))
			}
		}
	}
	for _, argv := range append(execs, b.Runs...) {
		if len(argv) == 0 || !path.IsAbs(argv[0]) {
			continue // shell form, or a name the base image resolves
		}
		if !fileExists(filepath.Join(final, filepath.FromSlash(argv[0]))) {
			errs = append(errs, fmt.Errorf("%s: the image runs %s, which no instruction puts there", where, argv[0]))
		}
	}
	return errs
}

// baseImageEnv is what the base images the Dockerfiles copy into define
// (their ENV, which a COPY destination may use).
var baseImageEnv = map[string]map[string]string{
	"public.ecr.aws/lambda/provided": {"LAMBDA_RUNTIME_DIR": "/var/runtime", "LAMBDA_TASK_ROOT": "/var/task"},
}

type simulation struct {
	root, scratch, where string
	df                   *Dockerfile
	ignore               *dockerignore
}

func (s *simulation) rootfs(stage int) string {
	return filepath.Join(s.scratch, fmt.Sprintf("stage%d", stage))
}

// stage simulates stage i.
func (s *simulation) stage(ctx context.Context, i int, buildArgs map[string]string) error {
	st := s.df.Stages[i]
	dir := s.rootfs(i)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base, _ := expand(st.From, s.df.GlobalArgs)
	if j, ok := s.df.stageByName(st.From); ok && j < i {
		if err := copyDir(s.rootfs(j), dir, nil); err != nil {
			return err
		}
	}
	vars := map[string]string{}
	for k, v := range baseImageEnv[strings.SplitN(base, ":", 2)[0]] {
		vars[k] = v
	}
	workdir := "/"
	moved := s.containerDirs(i)
	golang := strings.HasPrefix(base, "golang:")
	for _, in := range st.Instructions {
		at := fmt.Sprintf("%s: %s:%d %s", s.where, filepath.Base(s.df.Path), in.Line, in.Op)
		switch in.Op {
		case "ARG":
			name, def, hasDef := strings.Cut(in.Args, "=")
			if v, ok := buildArgs[name]; ok {
				vars[name] = v
			} else if g, ok := s.df.GlobalArgs[name]; ok && !hasDef {
				vars[name] = g
			} else {
				vars[name] = def
			}
		case "ENV":
			for k, v := range parseEnv(in.Args) {
				vars[k], _ = expand(v, vars)
			}
		case "WORKDIR":
			dir, _ := expand(in.Args, vars)
			workdir = path.Join(workdir, dir)
			if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(workdir)), 0o755); err != nil {
				return err
			}
		case "COPY", "ADD":
			if err := s.copy(i, in, vars, workdir, at); err != nil {
				return err
			}
		case "RUN":
			if !golang {
				return fmt.Errorf("%s in a stage FROM %s: deploycheck runs only golang stages' commands", at, base)
			}
			cmd := exec.CommandContext(ctx, "sh", "-c", moveDirs(stripRunFlags(in.Args), moved, dir))
			cmd.Dir = filepath.Join(dir, filepath.FromSlash(workdir))
			cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=-buildvcs=false")
			for k, v := range vars {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s %s: %w\n%s", at, stripRunFlags(in.Args), err, tail(out))
			}
		}
	}
	return nil
}

// containerDirs are the top-level container folders stage i's RUN commands
// use that must land in its folder: its WORKDIRs, its absolute COPY
// destinations, and what later stages COPY --from it.
func (s *simulation) containerDirs(i int) []string {
	set := map[string]bool{}
	top := func(p string) {
		if path.IsAbs(p) && !strings.Contains(p, "$") {
			if seg := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2)[0]; seg != "" {
				set["/"+seg] = true
			}
		}
	}
	for j, st := range s.df.Stages {
		for _, in := range st.Instructions {
			flags, args := splitFlags(in.Args)
			switch {
			case j == i && in.Op == "WORKDIR":
				top(in.Args)
			case j == i && in.Op == "COPY" && len(args) > 1:
				top(args[len(args)-1])
			case j > i && in.Op == "COPY" && flags["from"] != "":
				if k, ok := s.df.stageByName(flags["from"]); ok && k == i {
					for _, src := range args[:len(args)-1] {
						top(src)
					}
				}
			}
		}
	}
	dirs := make([]string, 0, len(set))
	for d := range set {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return dirs
}

// moveDirs rewrites each container path under dirs in a shell command to the
// same path under fs.
func moveDirs(cmd string, dirs []string, fs string) string {
	for _, d := range dirs {
		re := regexp.MustCompile(`(^|[\s='"])` + regexp.QuoteMeta(d) + `([/\s'"]|$)`)
		cmd = re.ReplaceAllString(cmd, "${1}"+filepath.ToSlash(fs)+d+"${2}")
	}
	return cmd
}

func (s *simulation) copy(i int, in Instruction, vars map[string]string, workdir, at string) error {
	flags, args := splitFlags(in.Args)
	if len(args) < 2 {
		return fmt.Errorf("%s: wants a source and a destination", at)
	}
	if strings.HasPrefix(args[0], "[") {
		return fmt.Errorf("%s: the JSON form is not simulated", at)
	}
	dest, _ := expand(args[len(args)-1], vars)
	intoDir := strings.HasSuffix(dest, "/") || len(args) > 2
	if !path.IsAbs(dest) {
		dest = path.Join(workdir, dest)
	}
	dst := filepath.Join(s.rootfs(i), filepath.FromSlash(dest))
	from, fromRoot, filter := flags["from"], s.root, s.ignore
	if from != "" {
		j, ok := s.df.stageByName(from)
		if !ok || j >= i {
			return fmt.Errorf("%s --from=%s: no earlier stage of that name", at, from)
		}
		fromRoot, filter = s.rootfs(j), nil
	}
	for _, src := range args[:len(args)-1] {
		src, _ = expand(src, vars)
		matches, err := filepath.Glob(filepath.Join(fromRoot, filepath.FromSlash(strings.TrimPrefix(src, "/"))))
		if err != nil {
			return fmt.Errorf("%s %s: %w", at, src, err)
		}
		if filter != nil {
			matches = filter.keep(matches)
		}
		if len(matches) == 0 {
			if from != "" {
				return fmt.Errorf("%s --from=%s %s: stage %s made no such file", at, from, src, from)
			}
			return fmt.Errorf("%s %s: not in the build context (after .dockerignore)", at, src)
		}
		for _, m := range matches {
			info, err := os.Stat(m)
			if err != nil {
				return err
			}
			switch {
			case info.IsDir():
				err = copyDir(m, dst, filter)
			case intoDir:
				err = copyFile(m, filepath.Join(dst, filepath.Base(m)))
			default:
				err = copyFile(m, dst)
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", at, src, err)
			}
		}
	}
	return nil
}

func copyDir(src, dst string, ignore *dockerignore) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ignore != nil && ignore.excluded(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		r, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, r), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(p, filepath.Join(dst, r))
	})
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, info.Mode().Perm())
}

// execForm parses ["a", "b"]; nil for the shell form.
func execForm(s string) []string {
	var argv []string
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &argv); err != nil {
		return nil
	}
	return argv
}

// parseEnv reads ENV's K=V pairs (and the old ENV K V form).
func parseEnv(args string) map[string]string {
	out := map[string]string{}
	f := strings.Fields(args)
	if len(f) >= 2 && !strings.Contains(f[0], "=") {
		out[f[0]] = strings.Join(f[1:], " ")
		return out
	}
	for _, kv := range f {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

func tail(out []byte) string {
	const max = 4000
	if len(out) > max {
		return "…" + string(out[len(out)-max:])
	}
	return string(out)
}

// dockerignore is the build context's .dockerignore: patterns in order, a
// later match deciding (! re-includes), a pattern that matches a folder
// excluding what it holds.
type dockerignore struct {
	root     string
	patterns []ignorePattern
}

type ignorePattern struct {
	re      *regexp.Regexp
	include bool
}

func loadDockerignore(root string) (*dockerignore, error) {
	di := &dockerignore{root: root}
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return di, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := ignorePattern{}
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			line, p.include = rest, true
		}
		p.re = globRegexp(strings.TrimPrefix(path.Clean(line), "/"))
		di.patterns = append(di.patterns, p)
	}
	return di, sc.Err()
}

// globRegexp turns a .dockerignore pattern into a regexp: ** any folders,
// * and ? within one name.
func globRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '*' && i+1 < len(p) && p[i+1] == '*':
			i++
			if i+1 < len(p) && p[i+1] == '/' {
				i++
				b.WriteString("(?:.*/)?")
			} else {
				b.WriteString(".*")
			}
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// excluded reports whether the file or folder at p (under root) is left out
// of the build context.
func (di *dockerignore) excluded(p string) bool {
	r, err := filepath.Rel(di.root, p)
	if err != nil || strings.HasPrefix(r, "..") {
		return false
	}
	r = filepath.ToSlash(r)
	out := false
	for _, pat := range di.patterns {
		// A pattern matching a parent folder matches what it holds.
		for prefix := r; ; {
			if pat.re.MatchString(prefix) {
				out = !pat.include
				break
			}
			i := strings.LastIndex(prefix, "/")
			if i < 0 {
				break
			}
			prefix = prefix[:i]
		}
	}
	return out
}

func (di *dockerignore) keep(paths []string) []string {
	var out []string
	for _, p := range paths {
		if !di.excluded(p) {
			out = append(out, p)
		}
	}
	return out
}
