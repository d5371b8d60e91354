package mongo_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/mongo/mongotest"
	"github.com/tempwatch/tempwatch/shared/telemetry"
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
	raw := func(sensor string, measured time.Time, payload string) telemetry.RawPayload {
		return telemetry.RawPayload{SensorID: sensor, MeasuredAt: measured, Topic: "t/" + sensor, Source: "mqtt",
			ReceivedAt: rcv, Raw: []byte(payload)}
	}
	ps := []telemetry.RawPayload{
		raw("s1", at, `{"value":1,"battery":{"v":3.1,"ok":true},"tags":["a"]}`),
		raw("s1", at.Add(time.Microsecond), `{"value":2,"$where":"x","a.b":1}`), // kept as bytes, whatever the names
		raw("s2", at, "\xff not even UTF-8"),
	}
	require.NoError(t, s.InsertRawPayloads(ctx, ps))
	again := raw("s1", at.In(time.FixedZone("x", 3600)), `{"value":9}`) // the same reading, redelivered with other bytes
	require.NoError(t, s.InsertRawPayloads(ctx, append(ps, again, raw("s3", at, `{"value":3}`))), "storing again is not an error")

	coll := db.Collection(mongo.RawPayloadsCollection)
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 4, n, "one document per reading")

	for _, p := range ps {
		got, err := s.FindPayload(ctx, p.SensorID, p.MeasuredAt)
		require.NoError(t, err)
		assert.Equal(t, p.Raw, got.Raw, "first payload of %s %s kept as sent", p.SensorID, p.MeasuredAt)
		assert.Equal(t, p.Topic, got.Topic)
		assert.Equal(t, "mqtt", got.Source)
		assert.True(t, rcv.Equal(got.ReceivedAt))
	}
	_, err = s.FindPayload(ctx, "s1", at.Add(2*time.Microsecond))
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err))

	// The _id sorts by sensor, then time: a sensor's payloads over a time
	// range are an _id range.
	assert.Equal(t, "s1/2026-01-02T03:04:05.123456Z", mongo.PayloadID("s1", at))
	n, err = coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{
		{Key: "$gte", Value: mongo.PayloadID("s1", at)}, {Key: "$lt", Value: mongo.PayloadID("s1", at.Add(time.Hour))}}}})
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)

	dl := telemetry.DeadLetter{MessageID: "m1", Reason: "payload is not JSON", Topic: "t", Source: "mqtt", ReceivedAt: at, Raw: []byte("x")}
	other := dl
	other.ReceivedAt = at.Add(time.Second) // the same bytes received again: another dead letter
	require.NoError(t, s.InsertDeadLetters(ctx, []telemetry.DeadLetter{dl, other}))
	require.NoError(t, s.InsertDeadLetters(ctx, []telemetry.DeadLetter{dl}), "a retried batch adds nothing")
	n, err = db.Collection(mongo.DeadLettersCollection).CountDocuments(ctx, bson.D{{Key: "reason", Value: "payload is not JSON"}})
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
}
