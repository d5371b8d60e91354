package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// deadLetterDoc is a dead_letters document as the per-client list reads it.
type deadLetterDoc struct {
	MessageID string `bson:"message_id"`
	ClientID  string `bson:"client_id"`
	SensorID  string `bson:"sensor_id"`
	Reason    string `bson:"reason"`
	Raw       []byte `bson:"raw"`
	RawSize   int    `bson:"raw_size"`
}

func (e *testEnv) deadLetters(t *testing.T) map[string]deadLetterDoc {
	t.Helper()
	cur, err := e.mdb.Collection(mongo.DeadLettersCollection).Find(context.Background(), bson.D{})
	require.NoError(t, err)
	var docs []deadLetterDoc
	require.NoError(t, cur.All(context.Background(), &docs))
	out := map[string]deadLetterDoc{}
	for _, d := range docs {
		out[d.MessageID] = d
	}
	return out
}

func (e *testEnv) clientID(t *testing.T, slug string) string {
	t.Helper()
	var id string
	require.NoError(t, e.db.QueryRow(context.Background(), `SELECT id FROM clients WHERE slug = $1`, slug).Scan(&id))
	return id
}

// TestHandleBatchRefused: a message the bridge refused is dead-lettered with
// the bridge's reason and size, never parsed (a valid reading in its head is
// not stored); every dead letter names the client and sensor its topic
// names, where they exist.
func TestHandleBatchRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	svc := e.service(nil, nil, nil)
	a1 := topic("acme", "dev-1")
	refused := func(id, topic, reason string, head []byte, size int) tempwatch.Message {
		m := msg(id, topic, string(head), e.now)
		m.Refused, m.Size = reason, size
		return m
	}
	head := []byte(fmt.Sprintf(`{"value":20,"ts":%q,"pad":"`, ts(e.now.Add(-time.Minute))))
	head = append(head, bytes.Repeat([]byte("x"), tempwatch.RefusedHeadBytes-len(head))...)
	batch := tempwatch.BatchRequest{Messages: []tempwatch.Message{
		msg("good", a1, fmt.Sprintf(`{"value":21,"ts":%q}`, ts(e.now.Add(-2*time.Minute))), e.now),
		refused("too-big", a1, "payload is larger than 65536 bytes", head, 10<<20),
		refused("keeps-failing", topic("acme", "dev-2"), "failed on its own 5 times: function error", []byte(`{"value":20}`), 12),
		refused("refused-unknown-device", topic("acme", "ghost"), "payload is larger than 65536 bytes", []byte("{"), 70_000),
		refused("refused-bad-topic", "tempwatch/acme", "payload is larger than 65536 bytes", []byte("{"), 70_000),
		msg("malformed", topic("globex", "dev-1"), `{"value":`, e.now),
		msg("unknown-device", topic("globex", "ghost"), `{"value":20}`, e.now),
		msg("unknown-client", topic("nobody", "dev-1"), `{"value":20}`, e.now),
	}}
	resp := svc.HandleBatch(ctx, batch)
	assert.Equal(t, 1, resp.Accepted)
	assert.Empty(t, resp.BatchItemFailures)
	reasons := map[string]string{}
	for _, r := range resp.Rejections {
		reasons[r.ID] = r.Reason
	}
	assert.Equal(t, map[string]string{
		"too-big":                "payload is larger than 65536 bytes",
		"keeps-failing":          "failed on its own 5 times: function error",
		"refused-unknown-device": "payload is larger than 65536 bytes",
		"refused-bad-topic":      "payload is larger than 65536 bytes",
		"malformed":              "payload is not JSON",
		"unknown-device":         `unknown device "ghost" for client "globex"`,
		"unknown-client":         `unknown device "dev-1" for client "nobody"`,
	}, reasons)
	assert.Equal(t, len(reasons), resp.Rejected)
	assert.Equal(t, 1, e.count(t, `SELECT count(*) FROM readings`), "a refused message's head is never parsed")

	acme, globex := e.clientID(t, "acme"), e.clientID(t, "globex")
	dead := e.deadLetters(t)
	require.Len(t, dead, len(reasons))
	for id, want := range map[string]deadLetterDoc{
		"too-big":                {ClientID: acme, SensorID: e.acme1, Raw: head, RawSize: 10 << 20},
		"keeps-failing":          {ClientID: acme, SensorID: e.acme2, Raw: []byte(`{"value":20}`), RawSize: 12},
		"refused-unknown-device": {ClientID: acme, Raw: []byte("{"), RawSize: 70_000},
		"refused-bad-topic":      {Raw: []byte("{"), RawSize: 70_000},
		"malformed":              {ClientID: globex, SensorID: e.globex1, Raw: []byte(`{"value":`), RawSize: 9},
		"unknown-device":         {ClientID: globex, Raw: []byte(`{"value":20}`), RawSize: 12},
		"unknown-client":         {Raw: []byte(`{"value":20}`), RawSize: 12},
	} {
		got := dead[id]
		want.MessageID, want.Reason = id, reasons[id]
		assert.Equal(t, want, got, "dead letter %s", id)
	}

	// HTTP: the authenticated device names client and sensor.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/ingest/readings", strings.NewReader(`{"value":1000}`))
	req.Header.Set(ingest.DeviceKeyHeader, e.acme1Key)
	ingest.NewHandler(svc, quietLog()).ServeHTTP(rec, req)
	require.Equal(t, http.StatusMultiStatus, rec.Code, rec.Body.String())
	var httpDead deadLetterDoc
	require.NoError(t, e.mdb.Collection(mongo.DeadLettersCollection).FindOne(ctx, bson.D{{Key: "source", Value: ingest.SourceHTTP}}).Decode(&httpDead))
	assert.Equal(t, acme, httpDead.ClientID)
	assert.Equal(t, e.acme1, httpDead.SensorID)
}
