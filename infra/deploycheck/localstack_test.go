package deploycheck_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/deploycheck"
	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

// fakeAWSLocal stands in for LocalStack's awslocal: it records each call's
// arguments (one a line, calls ended by a line "--end--") in $CALLS and
// answers what the deploy script reads. A function exists when
// FAKE_FUNCTIONS_EXIST=1.
const fakeAWSLocal = `#!/usr/bin/env bash
{ printf '%s\n' "$@"; echo --end--; } >>"$CALLS"
case "$1 $2" in
"lambda get-function") [ "${FAKE_FUNCTIONS_EXIST:-0}" = 1 ] ;;
"lambda invoke") echo '{}' >"${@: -1}"; echo None ;;
"apigateway create-rest-api") echo api1 ;;
"apigateway get-resources") echo root ;;
"apigateway create-resource") echo "res$RANDOM" ;;
esac
`

// lambdaCall is one recorded create-function or update-function-configuration.
type lambdaCall struct {
	op, function    string
	timeout, memory int
	env             map[string]string
}

// runDeploy runs the LocalStack deploy script against fakeAWSLocal with the
// inputs build.sh makes from the template (by the same command, infra/cmd/routes),
// and returns its create-function and update-function-configuration calls.
func runDeploy(t *testing.T, root string, exist bool) []lambdaCall {
	t.Helper()
	tmp := t.TempDir()
	build, bin := filepath.Join(tmp, "build"), filepath.Join(tmp, "bin")
	require.NoError(t, os.MkdirAll(build, 0o755))
	require.NoError(t, os.MkdirAll(bin, 0o755))
	routes := filepath.Join(bin, "routes")
	cmd := exec.Command("go", "build", "-o", routes, "./cmd/routes")
	cmd.Dir = filepath.Join(root, "infra")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for file, flag := range map[string]string{"functions.txt": "-functions", "routes.txt": "", "env.txt": "-env", "config.txt": "-config"} {
		args := []string{"-template", filepath.Join(root, deploycheck.TemplateFile)}
		if flag != "" {
			args = append(args, flag)
		}
		out, err := exec.Command(routes, args...).Output()
		require.NoError(t, err, "routes %s", flag)
		require.NoError(t, os.WriteFile(filepath.Join(build, file), out, 0o644))
	}
	fns, err := os.ReadFile(filepath.Join(build, "functions.txt"))
	require.NoError(t, err)
	for _, fn := range strings.Fields(string(fns)) {
		require.NoError(t, os.WriteFile(filepath.Join(build, fn+".zip"), nil, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(bin, "awslocal"), []byte(fakeAWSLocal), 0o755))
	calls := filepath.Join(tmp, "calls")
	exists := "0"
	if exist {
		exists = "1"
	}
	deploy := exec.Command("bash", filepath.Join(root, deploycheck.LocalStackDeploy))
	deploy.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "TEMPWATCH_BUILD="+build, "CALLS="+calls,
		"FAKE_FUNCTIONS_EXIST="+exists, "TEMPWATCH_JWT_SIGNING_KEYS=test:signing", "TEMPWATCH_JWT_PUBLIC_KEYS=test:public")
	out, err = deploy.CombinedOutput()
	require.NoError(t, err, "deploy script:\n%s", out)

	text, err := os.ReadFile(calls)
	require.NoError(t, err)
	var got []lambdaCall
	for _, call := range strings.Split(strings.TrimSuffix(string(text), "--end--\n"), "--end--\n") {
		args := strings.Split(strings.TrimSuffix(call, "\n"), "\n")
		if len(args) < 2 || args[0] != "lambda" || (args[1] != "create-function" && args[1] != "update-function-configuration") {
			continue
		}
		c := lambdaCall{op: args[1], timeout: -1, memory: -1}
		for i := 2; i+1 < len(args); i++ {
			switch v := args[i+1]; args[i] {
			case "--function-name":
				c.function = v
			case "--timeout":
				c.timeout, _ = strconv.Atoi(v)
			case "--memory-size":
				c.memory, _ = strconv.Atoi(v)
			case "--environment":
				var e struct{ Variables map[string]string }
				require.NoError(t, json.Unmarshal([]byte(v), &e), "--environment %s", v)
				c.env = e.Variables
			}
		}
		got = append(got, c)
	}
	return got
}

// TestLocalStackDeployFollowsTemplate: each function LocalStack creates or
// updates gets template.yaml's timeout, memory and variables (those written
// out with their value), and no variable the template does not list.
func TestLocalStackDeployFollowsTemplate(t *testing.T) {
	root := repoRoot(t)
	tpl, err := sam.Load(filepath.Join(root, deploycheck.TemplateFile))
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		exist bool
		op    string
	}{{"create", false, "create-function"}, {"update", true, "update-function-configuration"}} {
		t.Run(tc.name, func(t *testing.T) {
			calls := runDeploy(t, root, tc.exist)
			byName := map[string]lambdaCall{}
			for _, c := range calls {
				if c.op == tc.op {
					byName[c.function] = c
				}
			}
			require.Len(t, byName, len(tpl.Functions), "one %s per template function", tc.op)
			for _, f := range tpl.Functions {
				c := byName[f.Name]
				assert.Equal(t, int(f.Timeout.Seconds()), c.timeout, "%s: --timeout", f.Name)
				assert.Equal(t, f.MemorySize, c.memory, "%s: --memory-size", f.Name)
				listed := map[string]bool{}
				for _, v := range f.Env {
					listed[v.Name] = true
					if v.Value != "" {
						assert.Equal(t, v.Value, c.env[v.Name], "%s: %s", f.Name, v.Name)
					}
				}
				for name := range c.env {
					assert.True(t, listed[name], "%s gets %s, which template.yaml does not list for it", f.Name, name)
				}
			}
		})
	}
}
