package archive_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/archive"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/mongo/mongotest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// TestDeadLettersExpire runs a short TTL on the real server and the real
// clock: a fresh dead letter is listed, then hidden once the TTL has passed,
// and deleted by the scheduled sweep (polled until a deadline, as the
// schedule would run it).
func TestDeadLettersExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apitest.MustEnv(t)
	db := mongotest.MustDatabase(t)
	store := mongo.NewPayloadStore(db)
	const shortTTL = time.Second
	expiry := archive.NewExpiry(store, shortTTL, apitest.Discard())
	expiry.Prepare(ctx)
	h := archive.NewHandler(archive.Deps{DeadLetters: store, Payloads: store, Measurements: postgres.NewReadingStore(env.DB),
		TTL: shortTTL, Log: apitest.Discard()})

	received := time.Now()
	kept := tempwatch.DeadLetter{MessageID: "kept", ClientID: env.ClientA, Reason: "r", Topic: "t", Source: "mqtt",
		ReceivedAt: received.Add(time.Hour), Raw: []byte("future")} // received "later": outlives the test
	require.NoError(t, store.InsertDeadLetters(ctx, []tempwatch.DeadLetter{
		{MessageID: "short", ClientID: env.ClientA, Reason: "r", Topic: "t", Source: "mqtt", ReceivedAt: received, Raw: []byte("x")}, kept}))
	listed := func() int {
		resp := apitest.Do(t, h, &env.ViewerA, "GET", "/dead-letters", "")
		require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
		var pg page
		resp.Decode(t, &pg)
		return len(pg.Items)
	}
	stored := func() int64 {
		n, err := db.Collection(mongo.DeadLettersCollection).CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		return n
	}
	if time.Since(received) < shortTTL/2 { // the check is only meaningful well inside the TTL
		assert.Equal(t, 2, listed(), "listed while fresh")
	}

	event := json.RawMessage(`{"task":"` + archive.SweepTask + `"}`)
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var swept int
	for stored() > 1 && time.Now().Before(deadline) {
		out, err := expiry.HandleEvent(ctx, event)
		require.NoError(t, err)
		swept += out.(archive.SweepResult).Deleted
		<-tick.C
	}
	assert.EqualValues(t, 1, stored(), "the expired dead letter is deleted, the fresh one kept")
	assert.Equal(t, 1, swept)
	assert.GreaterOrEqual(t, time.Since(received), shortTTL, "nothing is deleted before its TTL")
	assert.Equal(t, 1, listed())
}

func TestHandleEventRefusesOtherEvents(t *testing.T) {
	t.Parallel()
	store := mongo.NewPayloadStore(mongotest.MustDatabase(t))
	expiry := archive.NewExpiry(store, time.Hour, apitest.Discard())
	for _, ev := range []string{`{}`, `{"task":"other"}`, `{"Records":[]}`, `[]`, `"expire-dead-letters"`} {
		_, err := expiry.HandleEvent(context.Background(), json.RawMessage(ev))
		assert.Error(t, err, "HandleEvent(%s)", ev)
	}
}
