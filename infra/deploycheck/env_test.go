package deploycheck_test

import (
	"context"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tempwatch/tempwatch/infra/deploycheck"
	"github.com/tempwatch/tempwatch/shared/app"
)

func TestCheckEnvironmentFindsProblems(t *testing.T) {
	root := repoRoot(t)
	edit := func(file, old, new string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			mustEdit(t, filepath.Join(dir, file), func(s string) string { return strings.Replace(s, old, new, 1) })
		}
	}
	tpl, compose, deploy := deploycheck.TemplateFile, deploycheck.ComposeFile, deploycheck.LocalStackDeploy
	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{"signing keys in Globals", edit(tpl, "    Timeout: 30\n", "    Timeout: 30\n    Environment:\n      Variables:\n        JWT_SIGNING_KEYS: !Ref JwtPublicKeys\n"),
			[]string{"template.yaml: ConsoleFunction gets JWT_SIGNING_KEYS, which functions/console does not read"}},
		{"a connection string for the openapi function", edit(tpl, "      LoggingConfig: {LogGroup: !Ref OpenAPIFunctionLogGroup}\n      Environment:\n        Variables:\n",
			"      LoggingConfig: {LogGroup: !Ref OpenAPIFunctionLogGroup}\n      Environment:\n        Variables:\n          DATABASE_URL: !Ref DatabaseURL\n"),
			[]string{"OpenAPIFunction gets DATABASE_URL, which functions/openapi does not read"}},
		{"a verifier without public keys", func(t *testing.T, dir string) {
			mustEdit(t, filepath.Join(dir, tpl), func(s string) string {
				i := strings.Index(s, "      CodeUri: functions/users/\n")
				return s[:i] + strings.Replace(s[i:], "          JWT_PUBLIC_KEYS: !Ref JwtPublicKeys\n", "", 1)
			})
		},
			[]string{"UsersFunction lacks JWT_PUBLIC_KEYS, which functions/users requires"}},
		{"a key parameter with a default", edit(tpl, "  JwtPublicKeys:\n    Type: String\n", "  JwtPublicKeys:\n    Type: String\n    Default: k:abc\n"),
			[]string{"parameter JwtPublicKeys has a Default"}},
		{"compose gives a verifier the signing key", edit(compose, "  JWT_PUBLIC_KEYS: ${JWT_PUBLIC_KEYS:?", "  JWT_SIGNING_KEYS: ${JWT_SIGNING_KEYS:?x}\n  JWT_PUBLIC_KEYS: ${JWT_PUBLIC_KEYS:?"),
			[]string{"docker-compose.yml: service users gets JWT_SIGNING_KEYS, which functions/users does not read"}},
		{"compose defaults the signing key", edit(compose, "${JWT_SIGNING_KEYS:?set it", "${JWT_SIGNING_KEYS:-local:abc}${JWT_SIGNING_KEYS:?set it"),
			[]string{"docker-compose.yml: ${JWT_SIGNING_KEYS:-...} gives a token key a default"}},
		{"a published key", edit(compose, "name: tempwatch\n", "name: tempwatch\n# JWT: local:bG9jYWwtZGV2LW9ubHktand0LXNlY3JldC1uZXZlci11c2UtaXQtZWxzZXdoZXJl\n"),
			[]string{`docker-compose.yml: "local:" followed by a long base64 value looks like a key`}},
		{"localstack defaults a key", edit(deploy, "BUILD=${TEMPWATCH_BUILD", "X=${TEMPWATCH_JWT_SIGNING_KEYS:-local:abc}\nBUILD=${TEMPWATCH_BUILD"),
			[]string{"10-deploy.sh: ${TEMPWATCH_JWT_SIGNING_KEYS:-...} gives a token key a default"}},
		{"localstack one environment for all", edit(deploy, `done <"$BUILD/env.txt"`, `done <"$BUILD/all.txt"`),
			[]string{"must build each function's Environment from $BUILD/env.txt"}},
		{"localstack one environment for every function", edit(deploy, `--environment "$(env_json "$fn")" >/dev/null
	else`, `--environment "$(env_json)" >/dev/null
	else`),
			[]string{"must build each function's Environment from $BUILD/env.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := MustCopyTree(t, root)
			tt.break_(t, dir)
			assertHasError(t, deploycheck.CheckEnvironment(context.Background(), dir), tt.want...)
		})
	}
}

// The table's shared parts are what shared/app.Load asks for: a function's
// variables follow its app.Needs, not a list kept by hand.
func TestFunctionEnvFollowsAppLoad(t *testing.T) {
	readBy := func(needs app.Needs) []string {
		var names []string
		_, err := app.Load(context.Background(), "fn", func(k string) string { names = append(names, k); return "" }, needs)
		assert.Error(t, err, "nothing is set, so Load stops before opening anything")
		sort.Strings(names)
		return slices.Compact(names)
	}
	all := func(parts ...deploycheck.Reads) []string {
		var names []string
		for _, p := range parts {
			names = append(names, p.Required...)
			names = append(names, p.Optional...)
		}
		sort.Strings(names)
		return slices.Compact(names)
	}
	core, verifier, signer, mongo := deploycheck.CoreEnv, deploycheck.VerifierEnv, deploycheck.SignerEnv, deploycheck.MongoEnv
	assert.Equal(t, all(core), readBy(app.Needs{}))
	assert.Equal(t, all(deploycheck.DatabaseEnv), readBy(app.Needs{NoRedis: true}))
	assert.Equal(t, all(core, verifier), readBy(app.Needs{Tokens: app.VerifiesTokens}))
	assert.Equal(t, all(core, signer), readBy(app.Needs{Tokens: app.SignsTokens}))
	assert.Equal(t, all(core, verifier, mongo), readBy(app.Needs{Tokens: app.VerifiesTokens, Mongo: true}))
}

// Every function folder has a table entry.
func TestFunctionEnvNamesEveryFunction(t *testing.T) {
	dirs, err := deploycheck.FunctionDirs(repoRoot(t))
	assert.NoError(t, err)
	for _, d := range dirs {
		assert.Contains(t, deploycheck.FunctionEnv, d)
	}
	assert.Len(t, deploycheck.FunctionEnv, len(dirs), "no entry for a function that does not exist")
}
