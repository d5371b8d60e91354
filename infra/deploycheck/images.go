package deploycheck

import (
	"context"
	"fmt"
	"go/version"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// DockerDir holds the project's Dockerfiles.
const DockerDir = "infra/docker"

// majorMinorImages are images whose releases are numbered major.minor
// (PostgreSQL since 10): for them 16.6 is one release, not a line.
var majorMinorImages = map[string]bool{"postgres": true}

// releaseNumber matches the dotted number of a tag: 7.4.1, v2.55.1, the
// 2026.02.27.21 of al2023.2026.02.27.21.
var releaseNumber = regexp.MustCompile(`\d+(?:\.\d+)*`)

// FloatingTag says why an image reference may name a different image
// tomorrow ("" if it names one release): no tag, latest, or a tag that names
// a release line (postgres:16, redis:7, emqx/emqx:5.8). A digest pins any tag.
func FloatingTag(ref string) string {
	if strings.Contains(ref, "@sha256:") {
		return ""
	}
	name, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		name, tag = ref[:i], ref[i+1:]
	}
	switch tag {
	case "":
		return "has no tag (latest)"
	case "latest":
		return "is :latest"
	}
	need := 3
	if majorMinorImages[name[strings.LastIndex(name, "/")+1:]] {
		need = 2
	}
	longest := 0
	for _, n := range releaseNumber.FindAllString(tag, -1) {
		longest = max(longest, strings.Count(n, ".")+1)
	}
	if longest < need {
		return fmt.Sprintf("tag %q names a release line, not a release (write the full version, or add a digest)", tag)
	}
	return ""
}

// Dockerfiles lists the Dockerfiles under DockerDir.
func Dockerfiles(root string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(root, DockerDir, "*Dockerfile"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("no Dockerfile under %s", DockerDir)
	}
	return files, nil
}

// CheckImagePins refuses a floating image reference (FloatingTag) in every
// FROM of the Dockerfiles (their ARG defaults expanded) and every image of
// both compose files that is pulled rather than built here, and a golang
// build image older than go.mod's go version (go would fetch a toolchain
// inside the build, or refuse).
func CheckImagePins(ctx context.Context, root string) []error {
	var errs []error
	goVersion, err := goDirective(filepath.Join(root, "go.mod"))
	if err != nil {
		errs = append(errs, err)
	}
	files, err := Dockerfiles(root)
	if err != nil {
		return append(errs, err)
	}
	for _, file := range files {
		df, err := ParseDockerfile(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for i, st := range df.Stages {
			if _, earlier := df.stageByName(st.From); earlier && i > 0 {
				continue // FROM an earlier stage
			}
			ref, missing := expand(st.From, df.GlobalArgs)
			if len(missing) > 0 {
				errs = append(errs, fmt.Errorf("%s: FROM %s: ARG %s has no default", rel(root, file), st.From, strings.Join(missing, ", ")))
				continue
			}
			if why := FloatingTag(ref); why != "" {
				errs = append(errs, fmt.Errorf("%s: FROM %s %s", rel(root, file), ref, why))
			}
			if tag, ok := strings.CutPrefix(ref, "golang:"); ok && goVersion != "" {
				v, _, _ := strings.Cut(tag, "-")
				if !version.IsValid("go"+v) || version.Compare("go"+v, "go"+goVersion) < 0 {
					errs = append(errs, fmt.Errorf("%s: FROM %s is older than go.mod's go %s", rel(root, file), ref, goVersion))
				}
			}
		}
	}
	for _, file := range []string{ComposeFile, LocalStackCompose} {
		p, err := loadCompose(ctx, root, file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		names := serviceNames(p)
		for _, name := range names {
			svc := p.Services[name]
			if svc.Build != nil {
				continue // built from this repository
			}
			if why := FloatingTag(svc.Image); why != "" {
				errs = append(errs, fmt.Errorf("%s: service %s: image %s %s", file, name, svc.Image, why))
			}
		}
	}
	return errs
}

func goDirective(gomod string) (string, error) {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	m := goLine.FindSubmatch(data)
	if m == nil {
		return "", fmt.Errorf("%s has no go directive", gomod)
	}
	return string(m[1]), nil
}

var goLine = regexp.MustCompile(`(?m)^go\s+(\S+)\s*$`)
