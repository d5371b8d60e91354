package deploycheck_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/deploycheck"
)

func TestFloatingTag(t *testing.T) {
	tests := []struct {
		ref      string
		floating bool
	}{
		{"postgres:16", true},
		{"postgres:16.6", false},
		{"redis:7", true},
		{"redis:7.4.1", false},
		{"emqx/emqx:5.8", true},
		{"emqx/emqx:5.8.3", false},
		{"mongo", true},
		{"grafana/grafana:latest", true},
		{"prom/prometheus:v2.55.1", false},
		{"golang:1.26", true},
		{"golang:1.26.8", false},
		{"public.ecr.aws/lambda/provided:al2023", true},
		{"public.ecr.aws/lambda/provided:al2023.2026.02.27.21", false},
		{"gcr.io/distroless/static-debian12:nonroot", true},
		{"gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639", false},
		{"localhost:5000/thing", true},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got := deploycheck.FloatingTag(tt.ref)
			assert.Equal(t, tt.floating, got != "", "FloatingTag(%s) = %q", tt.ref, got)
		})
	}
}

func TestCheckImagePins(t *testing.T) {
	ctx := context.Background()
	t.Run("real tree", func(t *testing.T) { assert.Empty(t, deploycheck.CheckImagePins(ctx, repoRoot(t))) })
	cases := []struct {
		name  string
		file  string
		edit  func(string) string
		parts []string
	}{
		{"compose line tag", deploycheck.ComposeFile, replace("image: postgres:16.6", "image: postgres:16"),
			[]string{"service postgres", "postgres:16", "release line"}},
		{"compose no tag", deploycheck.ComposeFile, replace("image: redis:7.4.1", "image: redis"),
			[]string{"service redis", "no tag"}},
		{"localstack latest", deploycheck.LocalStackCompose, replace("localstack/localstack:4.0.3", "localstack/localstack:latest"),
			[]string{deploycheck.LocalStackCompose, ":latest"}},
		{"dockerfile base", "infra/docker/function.Dockerfile", replace("provided:al2023.2026.02.27.21", "provided:al2023"),
			[]string{"function.Dockerfile", "FROM public.ecr.aws/lambda/provided:al2023", "release line"}},
		{"dockerfile arg", "infra/docker/bridge.Dockerfile", replace("ARG GO_VERSION=1.26.8", "ARG GO_VERSION=1.26"),
			[]string{"bridge.Dockerfile", "golang:1.26 ", "release line"}},
		{"go older than go.mod", "infra/docker/gateway.Dockerfile", replace("ARG GO_VERSION=1.26.8", "ARG GO_VERSION=1.25.3"),
			[]string{"gateway.Dockerfile", "older than go.mod"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := MustCopyTree(t, repoRoot(t))
			mustEdit(t, filepath.Join(dir, tc.file), tc.edit)
			assertHasError(t, deploycheck.CheckImagePins(ctx, dir), tc.parts...)
		})
	}
}

func replace(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

// TestDockerBuilds rebuilds, without an engine, every image compose builds:
// each Dockerfile's COPY set in a scratch folder and its go build there.
func TestDockerBuilds(t *testing.T) {
	skipBuildIfShort(t)
	ctx := context.Background()
	root := repoRoot(t)
	builds, err := deploycheck.DockerBuilds(ctx, root)
	require.NoError(t, err)
	files, err := deploycheck.Dockerfiles(root)
	require.NoError(t, err)
	require.Len(t, builds, len(files), "one build per Dockerfile")
	for _, b := range builds {
		t.Run(b.String(), func(t *testing.T) {
			assert.Empty(t, deploycheck.CheckDockerBuild(ctx, root, t.TempDir(), b))
		})
	}
}

func TestCheckDockerBuildFindsProblems(t *testing.T) {
	skipBuildIfShort(t)
	ctx := context.Background()
	cases := []struct {
		name  string
		build deploycheck.DockerBuild
		file  string
		edit  func(string) string
		parts []string
	}{
		{"folder not copied", deploycheck.DockerBuild{Dockerfile: "infra/docker/bridge.Dockerfile"},
			"infra/docker/bridge.Dockerfile", replace("COPY shared/ shared/\n", ""),
			[]string{"bridge.Dockerfile", "RUN", "go build", "shared/"}},
		{"folder ignored", deploycheck.DockerBuild{Dockerfile: "infra/docker/bridge.Dockerfile"},
			".dockerignore", func(s string) string { return s + "bridge/mqtt\n" },
			[]string{"bridge.Dockerfile", "RUN", "bridge/mqtt"}},
		{"output path wrong", deploycheck.DockerBuild{Dockerfile: "infra/docker/gateway.Dockerfile"},
			"infra/docker/gateway.Dockerfile", replace("COPY --from=build /out/gateway", "COPY --from=build /out/gw"),
			[]string{"gateway.Dockerfile", "/out/gw", "made no such file"}},
		{"healthcheck binary missing", deploycheck.DockerBuild{Dockerfile: "infra/docker/bridge.Dockerfile"},
			"infra/docker/bridge.Dockerfile", replace(`CMD ["/usr/local/bin/bridge", "-healthcheck"]`, `CMD ["/bin/healthcheck"]`),
			[]string{"bridge.Dockerfile", "/bin/healthcheck", "no instruction puts there"}},
		{"build arg missing", deploycheck.DockerBuild{Dockerfile: deploycheck.FunctionDocker},
			deploycheck.FunctionDocker, func(s string) string { return s + "\n" },
			[]string{"function.Dockerfile", "FUNCTION is required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := mustCopySources(t, repoRoot(t))
			mustEdit(t, filepath.Join(dir, tc.file), tc.edit)
			assertHasError(t, deploycheck.CheckDockerBuild(ctx, dir, t.TempDir(), tc.build), tc.parts...)
		})
	}
}
