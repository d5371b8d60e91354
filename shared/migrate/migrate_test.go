package migrate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/migrate"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
)

func latest(t *testing.T) postgres.Migration {
	t.Helper()
	ms, err := postgres.Migrations()
	require.NoError(t, err)
	return ms[len(ms)-1]
}

func TestLoadConfigNamesTheMissingURL(t *testing.T) {
	_, err := migrate.LoadConfig(config.MapEnv(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DATABASE_URL")
}

func TestOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.MustSchemaURL(t)
	var out bytes.Buffer
	res, err := migrate.Once(context.Background(), url, &out)
	require.NoError(t, err)
	assert.Equal(t, latest(t).Version, res.Version)
	assert.Contains(t, out.String(), "applied "+latest(t).Name)
	require.NoError(t, pgtest.CheckSchema(t, url))

	res, err = migrate.Once(context.Background(), url, io.Discard)
	require.NoError(t, err)
	assert.Empty(t, res.Applied, "a second run applies nothing")
}

func TestOnceNeverEchoesThePassword(t *testing.T) {
	_, err := migrate.Once(context.Background(), "postgres://tempwatch:s3cret-pw@127.0.0.1:1/tempwatch?connect_timeout=2", io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "127.0.0.1:1")
	assert.NotContains(t, err.Error(), "s3cret-pw")
}

// cloudFormation is the endpoint a custom resource answers: it records the
// responses PUT to it.
type cloudFormation struct {
	srv       *httptest.Server
	responses chan cfn.Response
}

func newCloudFormation(t *testing.T) *cloudFormation {
	c := &cloudFormation{responses: make(chan cfn.Response, 1)}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var resp cfn.Response
		if r.Method != http.MethodPut || json.NewDecoder(r.Body).Decode(&resp) != nil {
			http.Error(w, "want a PUT of a JSON response", http.StatusBadRequest)
			return
		}
		c.responses <- resp
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// response is what the handler PUT before it returned.
func (c *cloudFormation) response(t *testing.T) cfn.Response {
	t.Helper()
	select {
	case r := <-c.responses:
		return r
	default:
		t.Fatal("the handler returned without answering CloudFormation")
		return cfn.Response{}
	}
}

func (c *cloudFormation) event(t *testing.T, typ cfn.RequestType, physicalID string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(cfn.Event{RequestType: typ, RequestID: "req-1", ResponseURL: c.srv.URL + "/response",
		ResourceType: "Custom::SchemaMigration", LogicalResourceID: "SchemaMigration", StackID: "arn:aws:cloudformation:stack/tempwatch",
		PhysicalResourceID: physicalID, ResourceProperties: map[string]any{"SchemaVersion": "1"}})
	require.NoError(t, err)
	return b
}

func TestCustomResource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name       string
		typ        cfn.RequestType
		physicalID string
		migrated   bool
	}{
		{"create migrates", cfn.RequestCreate, "", true},
		{"update migrates", cfn.RequestUpdate, migrate.PhysicalID, true},
		{"delete leaves the schema", cfn.RequestDelete, migrate.PhysicalID, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := pgtest.MustSchemaURL(t)
			c := newCloudFormation(t)
			var out bytes.Buffer
			_, err := migrate.NewHandler(url, &out).Handle(ctx, c.event(t, tt.typ, tt.physicalID))
			require.NoError(t, err)
			resp := c.response(t)
			assert.Equal(t, cfn.StatusSuccess, resp.Status, "reason %q", resp.Reason)
			assert.Equal(t, migrate.PhysicalID, resp.PhysicalResourceID, "the same resource on every request")
			assert.Equal(t, "req-1", resp.RequestID)
			assert.Contains(t, out.String(), "CloudFormation "+string(tt.typ)+" of SchemaMigration")
			if tt.migrated {
				assert.EqualValues(t, latest(t).Version, resp.Data["SchemaVersion"])
				assert.NoError(t, pgtest.CheckSchema(t, url))
			} else {
				assert.ErrorIs(t, pgtest.CheckSchema(t, url), postgres.ErrSchemaBehind, "Delete ran nothing")
			}
		})
	}
}

// A failed run is reported to CloudFormation, which then rolls the deploy
// back before any function is updated.
func TestCustomResourceReportsFailure(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	url := db.Config().ConnString()
	_, err := db.Exec(context.Background(), `UPDATE schema_migrations SET sha256 = repeat('0', 64) WHERE version = $1`, latest(t).Version)
	require.NoError(t, err)
	c := newCloudFormation(t)
	_, err = migrate.NewHandler(url, io.Discard).Handle(context.Background(), c.event(t, cfn.RequestUpdate, migrate.PhysicalID))
	require.NoError(t, err, "the handler itself succeeds: the failure is CloudFormation's to act on")
	resp := c.response(t)
	assert.Equal(t, cfn.StatusFailed, resp.Status)
	assert.Contains(t, resp.Reason, latest(t).Name+" was changed after it was applied")
}

func TestPlainInvokeMigrates(t *testing.T) {
	t.Parallel()
	url := pgtest.MustSchemaURL(t)
	got, err := migrate.NewHandler(url, io.Discard).Handle(context.Background(), json.RawMessage(`{}`))
	require.NoError(t, err)
	ms, err := postgres.Migrations()
	require.NoError(t, err)
	want := postgres.MigrateResult{Version: latest(t).Version}
	for _, m := range ms {
		want.Applied = append(want.Applied, m.Name)
	}
	wantJSON, err := json.Marshal(want)
	require.NoError(t, err)
	b, err := json.Marshal(got)
	require.NoError(t, err)
	assert.JSONEq(t, string(wantJSON), string(b))
	assert.Contains(t, string(b), `"schema_version"`, "the invoke's answer names the version")
	require.NoError(t, pgtest.CheckSchema(t, url))

	_, err = migrate.NewHandler("postgres://postgres@127.0.0.1:1/x?connect_timeout=2", io.Discard).Handle(context.Background(), json.RawMessage(`{}`))
	require.Error(t, err, "a failed run is the invocation's error")
}
