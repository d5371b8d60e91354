package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func TestHandleBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	latest := &fakeLatest{}
	svc := e.service(nil, nil, latest)
	now := e.now
	rcv := now.Add(-time.Minute)
	a1, a2, g1 := topic("acme", "dev-1"), topic("acme", "dev-2"), topic("globex", "dev-1")
	batch := tempwatch.BatchRequest{Messages: []tempwatch.Message{
		msg("good1", a1, fmt.Sprintf(`{"value":20,"ts":%q,"seq":1,"humidity":41}`, ts(now.Add(-10*time.Minute))), rcv),
		msg("good2", a1, fmt.Sprintf(`{"temperature":22.5,"ts":%d}`, now.Add(-9*time.Minute).UnixMilli()), rcv),
		msg("dup-in-batch", a1, fmt.Sprintf(`{"value":21,"ts":%q}`, ts(now.Add(-10*time.Minute))), rcv),
		msg("fahrenheit", a2, fmt.Sprintf(`{"value":68,"ts":%q}`, ts(now.Add(-3*time.Minute))), rcv),
		msg("globex", g1, fmt.Sprintf(`{"value":5,"ts":%q}`, ts(now.Add(-time.Hour))), rcv),
		msg("no-ts", a1, `{"value":23}`, rcv),
		msg("backfill", a1, fmt.Sprintf(`{"value":-5,"ts":%q}`, ts(now.Add(-200*24*time.Hour))), rcv),
		msg("malformed", a1, `{"value":`, rcv),
		msg("string-value", a1, `{"value":"20"}`, rcv),
		msg("unknown-device", topic("acme", "nope"), `{"value":20}`, rcv),
		msg("other-tenant-device", topic("globex", "dev-2"), `{"value":20}`, rcv),
		msg("bad-topic", "tempwatch/acme/dev-1", `{"value":20}`, rcv),
		msg("out-of-range", a1, `{"value":120}`, rcv),
		msg("future", a1, fmt.Sprintf(`{"value":20,"ts":%q}`, ts(now.Add(10*time.Minute))), rcv),
		msg("too-old", a1, fmt.Sprintf(`{"value":20,"ts":%q}`, ts(now.Add(-400*24*time.Hour))), rcv),
	}}
	wantRejected := []string{"bad-topic", "future", "malformed", "other-tenant-device", "out-of-range", "string-value", "too-old", "unknown-device"}

	resp := svc.HandleBatch(ctx, batch)
	assert.Equal(t, 6, resp.Accepted, "accepted")
	assert.Equal(t, 1, resp.Duplicates, "duplicates")
	assert.Equal(t, len(wantRejected), resp.Rejected, "rejected")
	assert.Empty(t, resp.BatchItemFailures)
	assert.Equal(t, wantRejected, rejectedIDs(resp))
	reasons := map[string]string{}
	for _, r := range resp.Rejections {
		reasons[r.ID] = r.Reason
	}
	assert.Contains(t, reasons["out-of-range"], "outside the sensor's range")
	assert.Contains(t, reasons["unknown-device"], `unknown device "nope"`)
	assert.Contains(t, reasons["future"], "in the future")
	assert.Contains(t, reasons["too-old"], "older than the maximum age")
	assert.Contains(t, reasons["malformed"], "not JSON")

	assert.Equal(t, 6, e.count(t, `SELECT count(*) FROM readings`))
	assert.Equal(t, 4, e.count(t, `SELECT count(*) FROM readings WHERE sensor_id = $1`, e.acme1))
	// The first of two readings with one key wins; °F is stored in °C; a
	// reading without ts is measured at its receive time.
	assert.Equal(t, 1, e.count(t, `SELECT count(*) FROM readings WHERE sensor_id = $1 AND value = 20 AND seq = 1 AND measured_at = $2`, e.acme1, now.Add(-10*time.Minute)))
	assert.Equal(t, 1, e.count(t, `SELECT count(*) FROM readings WHERE sensor_id = $1 AND abs(value - 20) < 1e-9`, e.acme2))
	assert.Equal(t, 1, e.count(t, `SELECT count(*) FROM readings WHERE sensor_id = $1 AND value = 23 AND measured_at = $2`, e.acme1, rcv))
	assert.Equal(t, 0, e.rollupMismatches(t))

	e.assertPayloads(t, 6)
	assert.Equal(t, len(wantRejected), e.mongoCount(t, mongo.DeadLettersCollection, nil))
	// Each stored reading's payload is found by the reading's natural key,
	// as sent.
	rows, err := e.db.Query(ctx, `SELECT sensor_id, measured_at FROM readings`)
	require.NoError(t, err)
	keys, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
		Sensor string
		At     time.Time
	}])
	require.NoError(t, err)
	require.Len(t, keys, 6)
	store := mongo.NewPayloadStore(e.mdb)
	for _, k := range keys {
		p, err := store.FindPayload(ctx, k.Sensor, k.At)
		require.NoError(t, err, "payload of %s at %s", k.Sensor, k.At)
		assert.NotEmpty(t, p.Raw)
		assert.Equal(t, ingest.SourceMQTT, p.Source)
	}
	first, err := store.FindPayload(ctx, e.acme1, now.Add(-10*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, a1, first.Topic)
	assert.Equal(t, batch.Messages[0].Payload, first.Raw, "the first of two payloads with one key is the one kept")
	var dead bson.M
	require.NoError(t, e.mdb.Collection(mongo.DeadLettersCollection).FindOne(ctx, bson.D{{Key: "message_id", Value: "malformed"}}).Decode(&dead))
	assert.Equal(t, []byte(`{"value":`), dead["raw"].(bson.Binary).Data)
	assert.Contains(t, dead["reason"], "not JSON")

	// Latest cache: each sensor's newest inserted reading, once.
	newest := map[string]float64{}
	for _, r := range latest.offered {
		_, seen := newest[r.SensorID]
		assert.False(t, seen, "sensor %s offered twice", r.SensorID)
		newest[r.SensorID] = r.Value
	}
	assert.Equal(t, map[string]float64{e.acme1: 23, e.acme2: 20, e.globex1: 5}, roundValues(newest))
	assert.ElementsMatch(t, []string{e.acme1, e.acme2, e.globex1}, latest.invalidated)

	t.Run("redelivered batch stores nothing twice", func(t *testing.T) {
		latest.offered, latest.invalidated = nil, nil
		resp := svc.HandleBatch(ctx, batch)
		assert.Equal(t, 0, resp.Accepted)
		assert.Equal(t, 7, resp.Duplicates)
		assert.Equal(t, len(wantRejected), resp.Rejected)
		assert.Empty(t, resp.BatchItemFailures)
		assert.Equal(t, 6, e.count(t, `SELECT count(*) FROM readings`))
		assert.Equal(t, 0, e.rollupMismatches(t))
		e.assertPayloads(t, 6)
		assert.Equal(t, len(wantRejected), e.mongoCount(t, mongo.DeadLettersCollection, nil))
		assert.Empty(t, latest.offered, "nothing inserted, nothing offered")
	})

	t.Run("a later batch adds to existing buckets", func(t *testing.T) {
		resp := svc.HandleBatch(ctx, tempwatch.BatchRequest{Messages: []tempwatch.Message{
			msg("late-low", a1, fmt.Sprintf(`{"value":-39.5,"ts":%q}`, ts(now.Add(-10*time.Minute+time.Second))), rcv),
			msg("late-high", a1, fmt.Sprintf(`{"value":84,"ts":%q}`, ts(now.Add(-9*time.Minute-time.Second))), rcv),
		}})
		assert.Equal(t, 2, resp.Accepted)
		assert.Equal(t, 8, e.count(t, `SELECT count(*) FROM readings`))
		assert.Equal(t, 0, e.rollupMismatches(t))
	})
}

func rejectedIDs(resp tempwatch.BatchResponse) []string {
	var ids []string
	for _, r := range resp.Rejections {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	return ids
}

func roundValues(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		out[k] = float64(int64(v*1e6+0.5)) / 1e6
	}
	return out
}

// TestBatchEventHandlerJSON checks the wire contract the bridge relies on:
// base64 payloads in, camel-case batchItemFailures (an array, never null) out.
func TestBatchEventHandlerJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	handler := ingest.BatchEventHandler(e.service(nil, nil, nil))
	event, err := json.Marshal(tempwatch.BatchRequest{Messages: []tempwatch.Message{
		msg("1", topic("acme", "dev-1"), fmt.Sprintf(`{"value":4,"ts":%q}`, ts(e.now.Add(-time.Minute))), e.now),
		msg("2", topic("acme", "dev-1"), `{}`, e.now),
	}})
	require.NoError(t, err)
	out, err := handler(context.Background(), event)
	require.NoError(t, err)
	b, err := json.Marshal(out)
	require.NoError(t, err)
	assert.JSONEq(t, `{"accepted":1,"duplicates":0,"rejected":1,"rejections":[{"id":"2","reason":"value is missing"}],"batchItemFailures":[]}`, string(b))

	_, err = handler(context.Background(), json.RawMessage(`{"messages":"nope"}`))
	assert.Error(t, err, "a malformed event is an invocation error")
}

// TestHandleBatchDeletedSensor: a sensor deleted while its device is cached
// fails the batch once (retry), drops it from the cache, and the retry
// rejects it as unknown while the other devices' readings are stored.
func TestHandleBatchDeletedSensor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	svc := e.service(nil, nil, nil)
	reading := func(id, dev string, d time.Duration) tempwatch.Message {
		return msg(id, topic("acme", dev), fmt.Sprintf(`{"value":1,"ts":%q}`, ts(e.now.Add(-d))), e.now)
	}
	require.Equal(t, 2, svc.HandleBatch(ctx, tempwatch.BatchRequest{Messages: []tempwatch.Message{
		reading("w1", "dev-1", time.Hour), reading("w2", "dev-2", time.Hour)}}).Accepted)
	_, err := e.db.Exec(ctx, `DELETE FROM sensors WHERE id = $1`, e.acme2)
	require.NoError(t, err)

	batch := tempwatch.BatchRequest{Messages: []tempwatch.Message{reading("a", "dev-1", time.Minute), reading("b", "dev-2", time.Minute)}}
	first := svc.HandleBatch(ctx, batch)
	assert.Len(t, first.BatchItemFailures, 2)
	second := svc.HandleBatch(ctx, batch)
	assert.Equal(t, 1, second.Accepted)
	assert.Equal(t, []string{"b"}, rejectedIDs(second))
	assert.Empty(t, second.BatchItemFailures)
}

func TestHandleBatchEmpty(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	resp := e.service(nil, nil, nil).HandleBatch(context.Background(), tempwatch.BatchRequest{})
	assert.Equal(t, tempwatch.BatchResponse{BatchItemFailures: []tempwatch.BatchItemFailure{}}, resp)
}

// TestHandleBatchFeedsLatestCache runs ingest against the real cache: the
// newest reading lands in Redis, and a late, older one does not replace it.
func TestHandleBatchFeedsLatestCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	svc := e.service(nil, nil, nil) // the real redis.Cache on the env's prefix
	a1 := topic("acme", "dev-1")
	send := func(id string, v float64, ago time.Duration) {
		resp := svc.HandleBatch(ctx, tempwatch.BatchRequest{Messages: []tempwatch.Message{
			msg(id, a1, fmt.Sprintf(`{"value":%g,"ts":%q}`, v, ts(e.now.Add(-ago))), e.now)}})
		require.Equal(t, 1, resp.Accepted)
	}
	// What readers see, from Redis alone: the store behind it fails.
	c := redis.NewCache(e.rc, redis.CacheOptions{Store: noLatest{}})
	loads := 0
	aggregate := func() {
		_, err := c.Aggregate(ctx, "test", "p", []string{e.acme1}, func(context.Context) ([]byte, error) {
			loads++
			return []byte(`"x"`), nil
		})
		require.NoError(t, err)
	}
	aggregate()
	send("new", 30, time.Minute)
	aggregate()
	send("late", 10, time.Hour)
	aggregate()
	aggregate()

	got, err := c.Latest(ctx, e.acme1)
	require.NoError(t, err, "the latest reading is in Redis")
	assert.Equal(t, 30.0, got.Value, "the late, older reading did not replace it")
	assert.True(t, e.now.Add(-time.Minute).Equal(got.MeasuredAt), "measured at %s", got.MeasuredAt)
	assert.NotZero(t, got.ID)
	assert.Equal(t, 3, loads, "each insert invalidates the sensor's aggregates; the last read is a hit")
}

// noLatest is a database of record that cannot be read.
type noLatest struct{}

func (noLatest) LatestReadings(context.Context, []string) (map[string]tempwatch.Reading, error) {
	return nil, tempwatch.Errorf(tempwatch.EUNAVAILABLE, "down")
}
