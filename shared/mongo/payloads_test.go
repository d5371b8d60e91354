package mongo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/mongo/mongotest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func TestPayloadStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mongotest.MustDatabase(t)
	s := mongo.NewPayloadStore(db)
	require.NoError(t, s.EnsureIndexes(ctx))
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	rcv := at.Add(time.Second).Truncate(time.Millisecond) // BSON dates hold milliseconds
	raw := func(sensor string, measured time.Time, payload string) tempwatch.RawPayload {
		return tempwatch.RawPayload{SensorID: sensor, MeasuredAt: measured, Topic: "t/" + sensor, Source: "mqtt",
			ReceivedAt: rcv, Raw: []byte(payload)}
	}
	ps := []tempwatch.RawPayload{
		raw("s1", at, `{"value":1,"battery":{"v":3.1,"ok":true},"tags":["a"]}`),
		raw("s1", at.Add(time.Microsecond), `{"value":2,"$where":"x","a.b":1}`), // kept as bytes, whatever the names
		raw("s2", at, "\xff not even UTF-8"),
	}
	require.NoError(t, s.InsertRawPayloads(ctx, ps))
	require.NoError(t, s.InsertRawPayloads(ctx, ps), "a retried batch is not an error")
	coll := db.Collection(mongo.PayloadBatchesCollection)
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "one document per batch, a retried batch adds nothing")

	again := raw("s1", at.In(time.FixedZone("x", 3600)), `{"value":9}`) // the same reading, redelivered in a later batch
	require.NoError(t, s.InsertRawPayloads(ctx, []tempwatch.RawPayload{again, raw("s3", at, `{"value":3}`), raw("s3", at, `{"value":4}`)}))
	distinct, stored, err := s.CountPayloads(ctx)
	require.NoError(t, err)
	assert.Equal(t, 4, distinct)
	assert.Equal(t, 5, stored, "the redelivered payload is a second copy; a repeat within a batch is not")

	for _, p := range append(ps, raw("s3", at, `{"value":3}`)) {
		got, err := s.FindPayload(ctx, p.SensorID, p.MeasuredAt)
		require.NoError(t, err)
		assert.Equal(t, p.Raw, got.Raw, "first payload of %s %s kept as sent", p.SensorID, p.MeasuredAt)
		assert.Equal(t, p.Topic, got.Topic)
		assert.Equal(t, "mqtt", got.Source)
		assert.True(t, rcv.Equal(got.ReceivedAt))
		assert.True(t, p.MeasuredAt.Truncate(time.Microsecond).Equal(got.MeasuredAt))
	}
	for _, missing := range []struct {
		sensor string
		at     time.Time
	}{{"s1", at.Add(2 * time.Microsecond)}, {"s2", at.Add(time.Microsecond)}, {"s4", at}, {"s1", at.Add(time.Hour)}} {
		_, err = s.FindPayload(ctx, missing.sensor, missing.at)
		assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "%s %s", missing.sensor, missing.at)
	}

	dl := tempwatch.DeadLetter{MessageID: "m1", Reason: "payload is not JSON", Topic: "t", Source: "mqtt", ReceivedAt: at, Raw: []byte("x")}
	other := dl
	other.ReceivedAt = at.Add(time.Second) // the same bytes received again: another dead letter
	require.NoError(t, s.InsertDeadLetters(ctx, []tempwatch.DeadLetter{dl, other}))
	require.NoError(t, s.InsertDeadLetters(ctx, []tempwatch.DeadLetter{dl}), "a retried batch adds nothing")
	n, err = db.Collection(mongo.DeadLettersCollection).CountDocuments(ctx, bson.D{{Key: "reason", Value: "payload is not JSON"}})
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)

	huge := tempwatch.DeadLetter{MessageID: "m2", Reason: "payload is larger than 65536 bytes", Topic: "t", Source: "mqtt",
		ReceivedAt: at, Raw: make([]byte, mongo.MaxDeadLetterBytes+1000)}
	require.NoError(t, s.InsertDeadLetters(ctx, []tempwatch.DeadLetter{huge}), "an oversized payload is dead-lettered, not retried forever")
	var doc struct {
		Raw     []byte `bson:"raw"`
		RawSize int    `bson:"raw_size"`
	}
	require.NoError(t, db.Collection(mongo.DeadLettersCollection).FindOne(ctx, bson.D{{Key: "message_id", Value: "m2"}}).Decode(&doc))
	assert.Len(t, doc.Raw, mongo.MaxDeadLetterBytes)
	assert.Equal(t, mongo.MaxDeadLetterBytes+1000, doc.RawSize)

	// A message refused by its sender comes as its first bytes and its
	// full size, and names its client and sensor for the per-client list.
	refused := tempwatch.DeadLetter{MessageID: "m3", ClientID: "c1", SensorID: "s1", Reason: "payload is larger than 65536 bytes",
		Topic: "t", Source: "mqtt", ReceivedAt: at, Raw: []byte("head"), Size: 10 << 20}
	unknown := tempwatch.DeadLetter{MessageID: "m4", Reason: "topic is not tempwatch/<client-slug>/sensors/<device-id>/readings",
		Topic: "x", Source: "mqtt", ReceivedAt: at, Raw: []byte("{}")}
	require.NoError(t, s.InsertDeadLetters(ctx, []tempwatch.DeadLetter{refused, unknown}))
	var named struct {
		ClientID string `bson:"client_id"`
		SensorID string `bson:"sensor_id"`
		Raw      []byte `bson:"raw"`
		RawSize  int    `bson:"raw_size"`
	}
	require.NoError(t, db.Collection(mongo.DeadLettersCollection).FindOne(ctx, bson.D{{Key: "client_id", Value: "c1"}}).Decode(&named))
	assert.Equal(t, "s1", named.SensorID)
	assert.Equal(t, []byte("head"), named.Raw)
	assert.Equal(t, 10<<20, named.RawSize)
	var anon bson.M
	require.NoError(t, db.Collection(mongo.DeadLettersCollection).FindOne(ctx, bson.D{{Key: "message_id", Value: "m4"}}).Decode(&anon))
	assert.NotContains(t, anon, "client_id", "an unknown client is left out (admins list those)")
	assert.NotContains(t, anon, "sensor_id")
	assert.EqualValues(t, 2, anon["raw_size"])
}

// TestPayloadBatchSplits checks that a batch of more payload bytes than one
// document takes is stored in several, each payload once, all found.
func TestPayloadBatchSplits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mongotest.MustDatabase(t)
	s := mongo.NewPayloadStore(db)
	start := time.Date(2026, 3, 1, 0, 0, 0, 1000, time.UTC)
	big := make([]byte, tempwatch.MaxPayloadBytes)
	var ps []tempwatch.RawPayload
	for i := range 140 { // 140 × 64 KiB: more than maxBatchBytes (8 MiB) in one document
		ps = append(ps, tempwatch.RawPayload{SensorID: fmt.Sprintf("s%d", i%3), MeasuredAt: start.Add(time.Duration(i) * time.Hour),
			Topic: "t", Source: "http", ReceivedAt: start, Raw: append([]byte{byte(i)}, big[1:]...)})
	}
	require.NoError(t, s.InsertRawPayloads(ctx, ps))
	n, err := db.Collection(mongo.PayloadBatchesCollection).CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Greater(t, n, int64(1))
	distinct, stored, err := s.CountPayloads(ctx)
	require.NoError(t, err)
	assert.Equal(t, 140, distinct)
	assert.Equal(t, 140, stored)
	for _, i := range []int{0, 1, 70, 139} {
		got, err := s.FindPayload(ctx, ps[i].SensorID, ps[i].MeasuredAt)
		require.NoError(t, err, i)
		assert.Equal(t, byte(i), got.Raw[0])
		assert.Len(t, got.Raw, tempwatch.MaxPayloadBytes)
	}
}
