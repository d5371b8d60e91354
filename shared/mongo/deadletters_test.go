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

const (
	clientA = "8a1f5f3e-64a0-4c39-9d43-0a4f5c1b2e01"
	clientB = "8a1f5f3e-64a0-4c39-9d43-0a4f5c1b2e02"
	sensor1 = "5b2e7c1d-0f3a-4e8b-a1c2-3d4e5f607181"
	sensor2 = "5b2e7c1d-0f3a-4e8b-a1c2-3d4e5f607182"
)

func TestDeadLetterFieldsAreStoredAndRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mongo.NewPayloadStore(mongotest.MustDatabase(t))
	at := time.Date(2026, 2, 3, 4, 5, 6, 7_000_000, time.UTC)
	long := make([]byte, tempwatch.DeadLetterHeadBytes+10)
	for i := range long {
		long[i] = 'a' + byte(i%26)
	}
	refused := tempwatch.DeadLetter{MessageID: "m1", ClientID: clientA, SensorID: sensor1, Reason: "payload is larger than 65536 bytes",
		Topic: "tempwatch/a/sensors/d1/readings", Source: "mqtt", ReceivedAt: at, Raw: long, Size: 10 << 20}
	unknown := tempwatch.DeadLetter{MessageID: "m2", Reason: "unknown device", Topic: "tempwatch/x/sensors/y/readings",
		Source: "mqtt", ReceivedAt: at.Add(time.Second), Raw: []byte(`{"value":1}`)}
	require.NoError(t, s.InsertDeadLetters(ctx, []tempwatch.DeadLetter{refused, unknown}))

	got, err := s.FindDeadLetters(ctx, tempwatch.DeadLetterFilter{AllClients: true, Page: tempwatch.PageRequest{Limit: 10}})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "m2", got[0].MessageID, "newest received first")
	assert.Empty(t, got[0].ClientID, "a dead letter of no known client has none")
	assert.Equal(t, []byte(`{"value":1}`), got[0].Head)
	assert.Equal(t, 11, got[0].Size)

	r := got[1]
	assert.Regexp(t, "^[0-9a-f]{32}$", r.ID)
	assert.Equal(t, clientA, r.ClientID)
	assert.Equal(t, sensor1, r.SensorID)
	assert.Equal(t, refused.Reason, r.Reason)
	assert.Equal(t, refused.Topic, r.Topic)
	assert.Equal(t, "mqtt", r.Source)
	assert.True(t, at.Equal(r.ReceivedAt), "received_at %s, want %s", r.ReceivedAt, at)
	assert.Equal(t, 10<<20, r.Size, "the full length the bridge reported, not the bytes it handed over")
	assert.Equal(t, long[:tempwatch.DeadLetterHeadBytes], r.Head)
	assert.Nil(t, r.Raw, "a list does not read the kept bytes")

	one, err := s.FindDeadLetterByID(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, long, one.Raw)
	assert.Equal(t, 10<<20, one.Size)
	assert.Equal(t, clientA, one.ClientID)

	for _, id := range []string{"", "nope", "0123456789abcdef0123456789abcdef", r.ID + "0"} {
		_, err := s.FindDeadLetterByID(ctx, id)
		assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "FindDeadLetterByID(%q)", id)
	}
}

func TestFindDeadLettersFiltersAndPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mongo.NewPayloadStore(mongotest.MustDatabase(t))
	require.NoError(t, s.EnsureIndexes(ctx))
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	// Pairs share a received time, so the id breaks ties.
	var ds []tempwatch.DeadLetter
	for i := range 12 {
		d := tempwatch.DeadLetter{MessageID: fmt.Sprint(i), Reason: "r", Topic: "t", Source: "mqtt",
			ReceivedAt: base.Add(time.Duration(i/2) * time.Minute), Raw: []byte(fmt.Sprint(i))}
		switch i % 3 {
		case 0:
			d.ClientID, d.SensorID = clientA, sensor1
		case 1:
			d.ClientID, d.SensorID = clientA, sensor2
		case 2:
			d.ClientID = clientB
		}
		if i == 11 {
			d.ClientID = "" // no known client
		}
		ds = append(ds, d)
	}
	require.NoError(t, s.InsertDeadLetters(ctx, ds))

	for _, tc := range []struct {
		name string
		f    tempwatch.DeadLetterFilter
		want []string // message ids in any order
	}{
		{"no client and not all: nothing", tempwatch.DeadLetterFilter{}, nil},
		{"all clients, those of none too", tempwatch.DeadLetterFilter{AllClients: true},
			[]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}},
		{"one client", tempwatch.DeadLetterFilter{ClientID: clientA}, []string{"0", "1", "3", "4", "6", "7", "9", "10"}},
		{"one client's sensor", tempwatch.DeadLetterFilter{ClientID: clientA, SensorID: sensor2}, []string{"1", "4", "7", "10"}},
		{"a sensor of another client", tempwatch.DeadLetterFilter{ClientID: clientB, SensorID: sensor1}, nil},
		{"from inclusive, to exclusive", tempwatch.DeadLetterFilter{ClientID: clientA,
			From: base.Add(time.Minute), To: base.Add(3 * time.Minute)}, []string{"3", "4"}},
		{"bounds between milliseconds", tempwatch.DeadLetterFilter{AllClients: true,
			From: base.Add(time.Minute - time.Microsecond), To: base.Add(2*time.Minute + time.Microsecond)},
			[]string{"2", "3", "4", "5"}},
		{"since hides the expired", tempwatch.DeadLetterFilter{AllClients: true, Since: base.Add(5 * time.Minute)}, []string{"10", "11"}},
		{"from before since is since", tempwatch.DeadLetterFilter{ClientID: clientB, From: base, Since: base.Add(4 * time.Minute)},
			[]string{"8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Page.Limit = 100
			got, err := s.FindDeadLetters(ctx, tc.f)
			require.NoError(t, err)
			var ids []string
			for _, d := range got {
				ids = append(ids, d.MessageID)
			}
			assert.ElementsMatch(t, tc.want, ids, "FindDeadLetters(%+v)", tc.f)
		})
	}

	// Paging two at a time: every dead letter once, in (received_at, id) descending order.
	var seen []tempwatch.StoredDeadLetter
	page := tempwatch.PageRequest{Limit: 2}
	for range 20 {
		got, err := s.FindDeadLetters(ctx, tempwatch.DeadLetterFilter{AllClients: true, Page: page})
		require.NoError(t, err)
		require.LessOrEqual(t, len(got), 3)
		more := len(got) > 2
		got = got[:min(len(got), 2)]
		seen = append(seen, got...)
		if !more {
			break
		}
		last := got[len(got)-1]
		page.Cursor = &tempwatch.Cursor{CreatedAt: last.ReceivedAt, ID: last.ID}
	}
	require.Len(t, seen, 12)
	for i := 1; i < len(seen); i++ {
		a, b := seen[i-1], seen[i]
		assert.True(t, a.ReceivedAt.After(b.ReceivedAt) || (a.ReceivedAt.Equal(b.ReceivedAt) && a.ID > b.ID),
			"item %d (%s %s) must follow item %d (%s %s)", i, b.ReceivedAt, b.ID, i-1, a.ReceivedAt, a.ID)
	}

	_, err := s.FindDeadLetters(ctx, tempwatch.DeadLetterFilter{AllClients: true,
		Page: tempwatch.PageRequest{Limit: 2, Cursor: &tempwatch.Cursor{CreatedAt: base, ID: "42"}}})
	assert.Equal(t, tempwatch.EINVALID, tempwatch.ErrorCode(err), "a cursor of another list")
}

// TestDeadLetterTTL checks what the server says about TTL indexes, and that
// the sweep deletes the expired, a bounded number per call, and nothing else.
func TestDeadLetterTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mongotest.MustDatabase(t)
	s := mongo.NewPayloadStore(db)
	require.NoError(t, s.EnsureIndexes(ctx))

	indexed, err := s.EnsureDeadLetterTTL(ctx, time.Hour)
	require.NoError(t, err)
	ttlOf := func() (int32, bool) {
		cur, err := db.Collection(mongo.DeadLettersCollection).Indexes().List(ctx)
		require.NoError(t, err)
		var idx []struct {
			Name               string `bson:"name"`
			ExpireAfterSeconds *int32 `bson:"expireAfterSeconds"`
		}
		require.NoError(t, cur.All(ctx, &idx))
		for _, i := range idx {
			if i.ExpireAfterSeconds != nil {
				return *i.ExpireAfterSeconds, true
			}
		}
		return 0, false
	}
	secs, found := ttlOf()
	if indexed {
		assert.True(t, found, "the server took the TTL index: it must list it")
		assert.EqualValues(t, 3600, secs)
		again, err := s.EnsureDeadLetterTTL(ctx, 2*time.Hour)
		require.NoError(t, err)
		assert.True(t, again)
		secs, _ = ttlOf()
		assert.EqualValues(t, 7200, secs, "a changed TTL changes the index")
	} else {
		assert.False(t, found, "a server without TTL indexes (FerretDB) lists none; sweeps delete instead")
		t.Log("the server has no TTL indexes: only sweeps delete expired dead letters")
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	var ds []tempwatch.DeadLetter
	for i := range 25 {
		at := now.Add(-48 * time.Hour).Add(time.Duration(i) * time.Second) // expired
		if i >= 20 {
			at = now.Add(-time.Duration(i) * time.Second) // fresh
		}
		ds = append(ds, tempwatch.DeadLetter{MessageID: fmt.Sprint(i), Reason: "r", Topic: "t", Source: "mqtt", ReceivedAt: at, Raw: []byte{byte(i)}})
	}
	require.NoError(t, s.InsertDeadLetters(ctx, ds))
	count := func() int64 {
		n, err := db.Collection(mongo.DeadLettersCollection).CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		return n
	}
	cutoff := now.Add(-24 * time.Hour)
	n, err := s.SweepDeadLetters(ctx, cutoff, 15)
	require.NoError(t, err)
	assert.Equal(t, 15, n, "a sweep stops at its limit")
	assert.EqualValues(t, 10, count())
	n, err = s.SweepDeadLetters(ctx, cutoff, 1000)
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	n, err = s.SweepDeadLetters(ctx, cutoff, 1000)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.EqualValues(t, 5, count(), "the fresh ones stay")
}

// TestSweepDeadLettersInRounds sweeps more than one round deletes.
func TestSweepDeadLettersInRounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mongotest.MustDatabase(t)
	s := mongo.NewPayloadStore(db)
	old := time.Now().Add(-time.Hour)
	ds := make([]tempwatch.DeadLetter, 2600)
	for i := range ds {
		ds[i] = tempwatch.DeadLetter{MessageID: fmt.Sprint(i), Reason: "r", Topic: "t", Source: "mqtt", ReceivedAt: old, Raw: []byte(fmt.Sprint(i))}
	}
	require.NoError(t, s.InsertDeadLetters(ctx, ds))
	n, err := s.SweepDeadLetters(ctx, time.Now(), 2500)
	require.NoError(t, err)
	assert.Equal(t, 2500, n)
	left, err := db.Collection(mongo.DeadLettersCollection).CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 100, left)
}
