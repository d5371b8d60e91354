package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

// build compiles each function's bootstrap into workdir/<name>/bootstrap,
// in parallel, as `go build` from root. The Go build cache makes a rebuild of
// unchanged code cheap.
func build(ctx context.Context, root, workdir string, fns []sam.Function) (map[string]string, error) {
	out := make(map[string]string, len(fns))
	errs := make([]error, len(fns))
	sem := make(chan struct{}, max(1, runtime.NumCPU()))
	var wg sync.WaitGroup
	for i, fn := range fns {
		bin := filepath.Join(workdir, fn.Name, "bootstrap")
		out[fn.Name] = bin
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			pkg := "./" + strings.TrimSuffix(filepath.ToSlash(filepath.Clean(fn.CodeURI)), "/")
			errs[i] = goBuild(ctx, root, bin, fn.Name, pkg)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// goBuild builds pkg (./path, from root) into bin, statically.
func goBuild(ctx context.Context, root, bin, name, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s (go build %s in %s): %w\n%s", name, pkg, root, err, b)
	}
	return nil
}

func dirOf(p string) string { return filepath.Dir(p) }
