package archive_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/archive"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/mongo/mongotest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// fixture is the archive handler over a fresh PostgreSQL schema (two
// clients and their users) and a fresh MongoDB database, at a fixed clock.
type fixture struct {
	env   *apitest.Env
	store *mongo.PayloadStore
	h     http.Handler
	now   time.Time
}

const ttl = 72 * time.Hour

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := apitest.MustEnv(t)
	store := mongo.NewPayloadStore(mongotest.MustDatabase(t))
	require.NoError(t, store.EnsureIndexes(context.Background()))
	fx := &fixture{env: env, store: store, now: time.Now().UTC().Truncate(time.Second)}
	fx.h = archive.NewHandler(archive.Deps{DeadLetters: store, Payloads: store,
		Measurements: postgres.NewReadingStore(env.DB), TTL: ttl, Log: apitest.Discard(),
		Now: func() time.Time { return fx.now }})
	return fx
}

// deadLetter stores a dead letter of client (and sensor) received ago and
// returns its id.
func (fx *fixture) deadLetter(t *testing.T, client, sensor string, ago time.Duration, raw string) string {
	t.Helper()
	ctx := context.Background()
	d := tempwatch.DeadLetter{MessageID: fmt.Sprintf("%s-%x", ago, raw), ClientID: client, SensorID: sensor, Reason: "payload is not JSON",
		Topic: "tempwatch/x/sensors/d/readings", Source: "mqtt", ReceivedAt: fx.now.Add(-ago), Raw: []byte(raw)}
	require.NoError(t, fx.store.InsertDeadLetters(ctx, []tempwatch.DeadLetter{d}))
	got, err := fx.store.FindDeadLetters(ctx, tempwatch.DeadLetterFilter{AllClients: true,
		From: d.ReceivedAt, To: d.ReceivedAt.Add(time.Millisecond), Page: tempwatch.PageRequest{Limit: 100}})
	require.NoError(t, err)
	for _, g := range got {
		if g.MessageID == d.MessageID {
			return g.ID
		}
	}
	t.Fatalf("dead letter %s not stored", d.MessageID)
	return ""
}

type page struct {
	Items []struct {
		ID         string    `json:"id"`
		Reason     string    `json:"reason"`
		Topic      string    `json:"topic"`
		Source     string    `json:"source"`
		ReceivedAt time.Time `json:"received_at"`
		Size       int       `json:"size"`
		ClientID   string    `json:"client_id"`
		SensorID   string    `json:"sensor_id"`
		Head       []byte    `json:"head"`
		HeadText   *string   `json:"head_text"`
	} `json:"items"`
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor"`
}

func (fx *fixture) list(t *testing.T, p tempwatch.Principal, query string) page {
	t.Helper()
	resp := apitest.Do(t, fx.h, &p, "GET", "/dead-letters"+query, "")
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	var pg page
	resp.Decode(t, &pg)
	return pg
}

func ids(pg page) []string {
	out := []string{}
	for _, it := range pg.Items {
		out = append(out, it.ID)
	}
	return out
}

func TestListDeadLettersIsTenantScoped(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	e := fx.env
	sensorA := pgtest.MustSensor(t, e.DB, e.ClientA, "dev-a", "key-a")
	a1 := fx.deadLetter(t, e.ClientA, sensorA, time.Minute, "a1")
	a2 := fx.deadLetter(t, e.ClientA, "", 2*time.Minute, "a2")
	b1 := fx.deadLetter(t, e.ClientB, "", 3*time.Minute, "b1")
	none := fx.deadLetter(t, "", "", 4*time.Minute, "none")
	expired := fx.deadLetter(t, e.ClientA, "", ttl+time.Second, "expired")

	for _, tc := range []struct {
		name   string
		caller tempwatch.Principal
		query  string
		want   []string // newest first
	}{
		{"admin sees every client's and those of none", e.Admin, "", []string{a1, a2, b1, none}},
		{"admin filters a client", e.Admin, "?client_id=" + e.ClientB, []string{b1}},
		{"client admin sees own client's only", e.AdminA, "", []string{a1, a2}},
		{"viewer reads own client's", e.ViewerA, "", []string{a1, a2}},
		{"client admin of B", e.AdminB, "", []string{b1}},
		{"own client named", e.ViewerA, "?client_id=" + e.ClientA, []string{a1, a2}},
		{"another client named: empty, not its data", e.AdminA, "?client_id=" + e.ClientB, []string{}},
		{"a sensor", e.ViewerA, "?sensor_id=" + sensorA, []string{a1}},
		{"another client's sensor: filtered", e.AdminB, "?sensor_id=" + sensorA, []string{}},
		{"received from..to", e.Admin, "?from=" + rfc(fx.now.Add(-3*time.Minute)) + "&to=" + rfc(fx.now.Add(-time.Minute)),
			[]string{a2, b1}},
		{"from older than the TTL still hides the expired", e.AdminA, "?from=" + rfc(fx.now.Add(-10*ttl)), []string{a1, a2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, ids(fx.list(t, tc.caller, tc.query)))
		})
	}
	assert.NotContains(t, ids(fx.list(t, e.Admin, "")), expired, "past the TTL: hidden before any sweep")

	for _, q := range []string{"?client_id=acme", "?sensor_id=1", "?from=yesterday", "?from=" + rfc(fx.now) + "&to=" + rfc(fx.now),
		"?limit=0", "?limit=501", "?cursor=bm9wZQ"} {
		resp := apitest.Do(t, fx.h, &e.Admin, "GET", "/dead-letters"+q, "")
		assert.Equal(t, http.StatusBadRequest, resp.Status, "GET /dead-letters%s: %s", q, resp.Body)
	}
	resp := apitest.Do(t, fx.h, nil, "GET", "/dead-letters", "")
	assert.Equal(t, http.StatusUnauthorized, resp.Status)
}

func TestListDeadLettersPagesNewestFirst(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	e := fx.env
	var want []string
	for i := range 7 {
		// Pairs received in the same millisecond: the id breaks the tie.
		want = append(want, fx.deadLetter(t, e.ClientA, "", time.Duration(i/2)*time.Second, fmt.Sprint("m", i)))
	}
	var got []string
	query := "?limit=2"
	for range 10 {
		pg := fx.list(t, e.ViewerA, query)
		got = append(got, ids(pg)...)
		if !pg.HasMore {
			assert.Empty(t, pg.NextCursor)
			break
		}
		query = "?limit=2&cursor=" + url.QueryEscape(pg.NextCursor)
	}
	assert.ElementsMatch(t, want, got, "every dead letter once")
	assert.Len(t, got, 7)

	pg := fx.list(t, e.ViewerA, "")
	for i := 1; i < len(pg.Items); i++ {
		a, b := pg.Items[i-1], pg.Items[i]
		assert.True(t, a.ReceivedAt.After(b.ReceivedAt) || (a.ReceivedAt.Equal(b.ReceivedAt) && a.ID > b.ID), "order at %d", i)
	}
}

func TestDeadLetterHeadAndText(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	e := fx.env
	// A three-byte character straddles the head's end.
	cut := strings.Repeat("x", tempwatch.DeadLetterHeadBytes-1) + "€" + "tail"
	for _, tc := range []struct {
		name     string
		raw      string
		head     string
		headText *string // nil: not valid UTF-8
	}{
		{"JSON", `{"value":"warm"}`, `{"value":"warm"}`, new(`{"value":"warm"}`)},
		{"empty", "", "", new("")},
		{"not UTF-8", "\xff\xfe binary", "\xff\xfe binary", nil},
		{"a character cut by the head", cut, cut[:tempwatch.DeadLetterHeadBytes], new(strings.Repeat("x", tempwatch.DeadLetterHeadBytes-1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fx.deadLetter(t, e.ClientA, "", time.Minute, tc.raw)
			var item *struct {
				Head     []byte  `json:"head"`
				HeadText *string `json:"head_text"`
				Size     int     `json:"size"`
			}
			for _, it := range fx.list(t, e.ViewerA, "?limit=500").Items {
				if it.ID == id {
					item = &struct {
						Head     []byte  `json:"head"`
						HeadText *string `json:"head_text"`
						Size     int     `json:"size"`
					}{it.Head, it.HeadText, it.Size}
				}
			}
			require.NotNil(t, item)
			assert.Equal(t, []byte(tc.head), item.Head)
			assert.Equal(t, tc.headText, item.HeadText)
			assert.Equal(t, len(tc.raw), item.Size)

			resp := apitest.Do(t, fx.h, &e.ViewerA, "GET", "/dead-letters/"+id, "")
			require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
			body := resp.JSON(t)
			assert.Equal(t, base64.StdEncoding.EncodeToString([]byte(tc.raw)), body["payload"], "every kept byte")
			assert.Equal(t, false, body["truncated"])
			if isText := tc.name != "not UTF-8"; isText {
				assert.Equal(t, tc.raw, body["text"])
			} else {
				assert.NotContains(t, body, "text")
			}
		})
	}
}

func TestGetDeadLetter(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	e := fx.env
	a := fx.deadLetter(t, e.ClientA, "", time.Minute, `{"value":"x"}`)
	none := fx.deadLetter(t, "", "", time.Minute, "junk")
	expired := fx.deadLetter(t, e.ClientA, "", ttl+time.Second, "old")
	huge := tempwatch.DeadLetter{MessageID: "big", ClientID: e.ClientA, Reason: "payload is larger than 65536 bytes", Topic: "t",
		Source: "mqtt", ReceivedAt: fx.now, Raw: []byte(strings.Repeat("é", tempwatch.RefusedHeadBytes/2) + "\xc3"), Size: 10 << 20}
	require.NoError(t, fx.store.InsertDeadLetters(context.Background(), []tempwatch.DeadLetter{huge}))
	list := fx.list(t, e.AdminA, "?limit=1")
	require.Len(t, list.Items, 1)
	big := list.Items[0].ID

	for _, tc := range []struct {
		name   string
		caller *tempwatch.Principal
		id     string
		want   int
	}{
		{"own client's, viewer", &e.ViewerA, a, 200},
		{"own client's, client admin", &e.AdminA, a, 200},
		{"admin", &e.Admin, a, 200},
		{"another client's", &e.AdminB, a, 404},
		{"another client's viewer", &e.ViewerB, a, 404},
		{"of no client, admin", &e.Admin, none, 200},
		{"of no client, client admin", &e.AdminA, none, 404},
		{"past the TTL", &e.Admin, expired, 404},
		{"unknown", &e.Admin, "0123456789abcdef0123456789abcdef", 404},
		{"not an id", &e.Admin, "..%2f", 404},
		{"anonymous", nil, a, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := apitest.Do(t, fx.h, tc.caller, "GET", "/dead-letters/"+tc.id, "")
			assert.Equal(t, tc.want, resp.Status, string(resp.Body))
			if tc.want == 404 {
				assert.Equal(t, "not_found", resp.JSON(t)["code"])
			}
		})
	}

	resp := apitest.Do(t, fx.h, &e.ViewerA, "GET", "/dead-letters/"+big, "")
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	body := resp.JSON(t)
	assert.EqualValues(t, 10<<20, body["size"])
	assert.Equal(t, true, body["truncated"], "the bridge handed over only the first bytes")
	assert.Equal(t, strings.Repeat("é", tempwatch.RefusedHeadBytes/2), body["text"], "the cut character is left out of the text")
	assert.Equal(t, e.ClientA, body["client_id"])
	assert.NotContains(t, body, "sensor_id", "absent when unknown")
}

func TestGetRawPayload(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	e := fx.env
	ctx := context.Background()
	sensor := pgtest.MustSensor(t, e.DB, e.ClientA, "dev-raw", "key-raw")
	measured := time.Date(2026, 4, 5, 6, 7, 8, 123456000, time.UTC)
	reading := func(at time.Time) string {
		var id int64
		require.NoError(t, e.DB.QueryRow(ctx, `INSERT INTO readings (sensor_id, value, measured_at) VALUES ($1, 4.5, $2) RETURNING id`,
			sensor, at).Scan(&id))
		return fmt.Sprint(id)
	}
	archived, typed := reading(measured), reading(measured.Add(time.Minute))
	payload := `{"value":4.5,"ts":"2026-04-05T06:07:08.123456Z","battery":3.1}`
	received := measured.Add(2 * time.Second)
	require.NoError(t, fx.store.InsertRawPayloads(ctx, []tempwatch.RawPayload{{SensorID: sensor, MeasuredAt: measured,
		Topic: "tempwatch/client-a/sensors/dev-raw/readings", Source: "mqtt", ReceivedAt: received, Raw: []byte(payload)}}))

	for _, tc := range []struct {
		name   string
		caller *tempwatch.Principal
		id     string
		want   int
		detail string
	}{
		{"viewer of the client", &e.ViewerA, archived, 200, ""},
		{"admin", &e.Admin, archived, 200, ""},
		{"another client's reading", &e.AdminB, archived, 404, "Measurement not found."},
		{"another client's viewer", &e.ViewerB, archived, 404, "Measurement not found."},
		{"no payload archived", &e.AdminA, typed, 404, "The archive holds no raw payload for this measurement"},
		{"no such reading", &e.Admin, "999999999", 404, "Measurement not found."},
		{"not an id", &e.Admin, "abc", 404, "Measurement not found."},
		{"anonymous", nil, archived, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := apitest.Do(t, fx.h, tc.caller, "GET", "/measurements/"+tc.id+"/raw", "")
			require.Equal(t, tc.want, resp.Status, string(resp.Body))
			if tc.detail != "" {
				assert.Contains(t, resp.JSON(t)["detail"], tc.detail)
			}
		})
	}

	resp := apitest.Do(t, fx.h, &e.ViewerA, "GET", "/measurements/"+archived+"/raw", "")
	require.Equal(t, http.StatusOK, resp.Status)
	var got struct {
		MeasurementID int64     `json:"measurement_id"`
		SensorID      string    `json:"sensor_id"`
		MeasuredAt    time.Time `json:"measured_at"`
		Topic         string    `json:"topic"`
		Source        string    `json:"source"`
		ReceivedAt    time.Time `json:"received_at"`
		Size          int       `json:"size"`
		Payload       []byte    `json:"payload"`
		Text          string    `json:"text"`
	}
	resp.Decode(t, &got)
	assert.Equal(t, archived, fmt.Sprint(got.MeasurementID))
	assert.Equal(t, sensor, got.SensorID)
	assert.True(t, measured.Equal(got.MeasuredAt))
	assert.Equal(t, "tempwatch/client-a/sensors/dev-raw/readings", got.Topic)
	assert.Equal(t, "mqtt", got.Source)
	assert.True(t, received.Equal(got.ReceivedAt))
	assert.Equal(t, []byte(payload), got.Payload, "the bytes as sent, extra fields included")
	assert.Equal(t, payload, got.Text)
	assert.Equal(t, len(payload), got.Size)
}

func rfc(t time.Time) string { return url.QueryEscape(t.UTC().Format(time.RFC3339Nano)) }
