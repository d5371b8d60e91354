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
)

func TestPayloadStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mongotest.MustDatabase(t)
	s := mongo.NewPayloadStore(db)
	require.NoError(t, s.EnsureIndexes(ctx))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	raw := func(id int64, payload string) telemetry.RawPayload {
		return telemetry.RawPayload{ReadingID: id, SensorID: "s", ClientSlug: "acme", DeviceID: "d", Topic: "t",
			Source: "mqtt", ReceivedAt: at, Payload: []byte(payload), Raw: []byte(payload)}
	}
	ps := []telemetry.RawPayload{
		raw(1, `{"value":1,"battery":{"v":3.1,"ok":true},"tags":["a"]}`),
		raw(2, `{"value":2,"$where":"x","a.b":1}`), // names some servers refuse: raw bytes only
	}
	require.NoError(t, s.InsertRawPayloads(ctx, ps))
	require.NoError(t, s.InsertRawPayloads(ctx, append(ps, raw(3, `{"value":3}`))), "storing again is not an error")

	coll := db.Collection(mongo.RawPayloadsCollection)
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 3, n)
	var doc bson.M
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: int64(2)}}).Decode(&doc))
	assert.NotContains(t, doc, "payload")
	assert.Equal(t, []byte(`{"value":2,"$where":"x","a.b":1}`), doc["raw"].(bson.Binary).Data)
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "payload.battery.ok", Value: true}}).Decode(&doc))
	assert.EqualValues(t, 1, doc["reading_id"])

	dl := telemetry.DeadLetter{MessageID: "m1", Reason: "payload is not JSON", Topic: "t", Source: "mqtt", ReceivedAt: at, Raw: []byte("x")}
	other := dl
	other.ReceivedAt = at.Add(time.Second) // the same bytes received again: another dead letter
	require.NoError(t, s.InsertDeadLetters(ctx, []telemetry.DeadLetter{dl, other}))
	require.NoError(t, s.InsertDeadLetters(ctx, []telemetry.DeadLetter{dl}), "a retried batch adds nothing")
	n, err = db.Collection(mongo.DeadLettersCollection).CountDocuments(ctx, bson.D{{Key: "reason", Value: "payload is not JSON"}})
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
}
