package invoker

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func TestAppendRequestEncodesAsEncodingJSON(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)
	tests := []struct {
		name string
		msgs []tempwatch.Message
	}{
		{"no messages", []tempwatch.Message{}},
		{"plain", []tempwatch.Message{
			{ID: "1", Topic: "tempwatch/acme/sensors/dev-1/readings", Payload: []byte(`{"value":21.5}`), ReceivedAt: at},
			{ID: "zz", Topic: "tempwatch/acme/sensors/dev-2/readings", Payload: []byte(`{"value":-3}`), ReceivedAt: at.Add(time.Millisecond)},
		}},
		{"escapes", []tempwatch.Message{{ID: `"q"\`, Topic: "t/\x00\x1f\t\n/<a&b>/\u2028/é/😀", Payload: []byte{0, 1, 0xff}, ReceivedAt: at}}},
		{"invalid UTF-8 in the topic", []tempwatch.Message{{ID: "1", Topic: "t/\xff\xfe/x", Payload: []byte("x"), ReceivedAt: at}}},
		{"empty and nil payloads", []tempwatch.Message{{ID: "1", Topic: "t", Payload: []byte{}}, {ID: "2", Topic: "t"}}},
		{"refused", []tempwatch.Message{{ID: "7", Topic: "t", Payload: []byte("head"), ReceivedAt: at,
			Refused: "payload is 10485760 bytes, over the 65536-byte limit", Size: 10 << 20}}},
		{"zone and whole seconds", []tempwatch.Message{{ID: "1", Topic: "t", Payload: []byte("{}"),
			ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", 5*3600+1800))}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tempwatch.BatchRequest{Messages: tt.msgs}
			want, err := json.Marshal(req)
			require.NoError(t, err)
			got := appendRequest(nil, req)
			assert.JSONEq(t, string(want), string(got))

			// What the ingest function decodes (shared/ingest uses jsonv1).
			var fromStd, fromOurs tempwatch.BatchRequest
			require.NoError(t, jsonv1.Unmarshal(want, &fromStd))
			require.NoError(t, jsonv1.Unmarshal(got, &fromOurs))
			assert.Equal(t, fromStd, fromOurs)

			assert.LessOrEqual(t, len(got), requestSizeBound(req), "EncodedSize bounds the encoding")
		})
	}
}

// requestSizeBound is what a batch is capped by: RequestOverhead and the
// EncodedSize of each message.
func requestSizeBound(req tempwatch.BatchRequest) int {
	n := RequestOverhead
	for _, m := range req.Messages {
		n += EncodedSize(m)
	}
	return n
}

func TestEncodedSizeIsTightForPlainMessages(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)
	m := tempwatch.Message{ID: "1a", Topic: "tempwatch/acme/sensors/dev-1/readings", Payload: []byte(`{"value":21.5}`), ReceivedAt: at}
	req := tempwatch.BatchRequest{Messages: []tempwatch.Message{m, m, m}}
	got, bound := len(appendRequest(nil, req)), requestSizeBound(req)
	assert.LessOrEqual(t, got, bound)
	// The slack is the time's offset and the trailing comma, nothing that
	// grows with the payload: a cap in encoded bytes is not a cap in
	// guesses.
	assert.LessOrEqual(t, bound-got, 3*(len("-07:00")-len("Z")+1), "EncodedSize(%d bytes) slack", got)
}

func TestAppendRequestAppends(t *testing.T) {
	req := tempwatch.BatchRequest{Messages: []tempwatch.Message{{ID: "1", Topic: "t", Payload: []byte("p")}}}
	want, err := json.Marshal(req)
	require.NoError(t, err)
	assert.Equal(t, "prefix"+string(want), string(appendRequest([]byte("prefix"), req)), "plain ASCII comes out byte for byte")
}

func FuzzAppendRequest(f *testing.F) {
	f.Add("1", "tempwatch/acme/sensors/dev-1/readings", []byte(`{"value":1}`), int64(1772600767123456789))
	f.Add("\"", "\xff<>&\u2028", []byte{}, int64(0))
	f.Fuzz(func(t *testing.T, id, topic string, payload []byte, ns int64) {
		req := tempwatch.BatchRequest{Messages: []tempwatch.Message{{ID: id, Topic: topic, Payload: payload, ReceivedAt: time.Unix(0, ns).UTC()}}}
		want, err := json.Marshal(req)
		require.NoError(t, err)
		var fromStd, fromOurs tempwatch.BatchRequest
		require.NoError(t, jsonv1.Unmarshal(want, &fromStd))
		got := appendRequest(nil, req)
		require.NoError(t, jsonv1.Unmarshal(got, &fromOurs))
		assert.Equal(t, fromStd, fromOurs)
		assert.LessOrEqual(t, len(got), requestSizeBound(req), "EncodedSize bounds the encoding")

		req.Messages[0].Refused, req.Messages[0].Size = topic, len(payload)+1
		got = appendRequest(nil, req)
		require.NoError(t, jsonv1.Unmarshal(got, &fromOurs))
		assert.Equal(t, req.Messages[0].Size, fromOurs.Messages[0].Size)
		assert.LessOrEqual(t, len(got), requestSizeBound(req), "EncodedSize bounds the encoding of a refused message")
	})
}

// benchRequest is a batch as the end-to-end benchmark's devices make it.
func benchRequest() tempwatch.BatchRequest {
	at := time.Now().UTC()
	req := tempwatch.BatchRequest{Messages: make([]tempwatch.Message, 500)}
	for i := range req.Messages {
		req.Messages[i] = tempwatch.Message{ID: fmt.Sprint(i + 100000), Topic: fmt.Sprintf("tempwatch/bench-1/sensors/dev-%04d/readings", i%50),
			Payload: []byte(`{"value":18.27,"ts":"2026-03-04T05:06:07.123Z"}`), ReceivedAt: at}
	}
	return req
}

// BenchmarkEncodeRequest: a 500-message batch with encoding/json and with
// appendRequest.
func BenchmarkEncodeRequest(b *testing.B) {
	req := benchRequest()
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendRequest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			appendRequest(nil, req)
		}
	})
}

// quotedSize bounds the quoted length wherever in a word of eight the
// byte to escape falls, and is exact for a string with none.
func TestQuotedSize(t *testing.T) {
	for _, special := range []string{"", "\x7f", `"`, `\`, "\x00", "\x1f", "\n", "é", "\xff", "😀"} {
		for pos := range 17 {
			s := strings.Repeat("a", pos) + special + strings.Repeat("b", 16-pos)
			quoted, _ := jsontext.AppendQuote(nil, s)
			got, want := quotedSize(s), len(quoted)-2
			assert.GreaterOrEqual(t, got, want, "quotedSize(%q)", s)
			if special == "" || special == "\x7f" {
				assert.Equal(t, want, got, "quotedSize(%q)", s)
			} else {
				assert.Greater(t, got, len(s), "quotedSize(%q) sees the byte to escape", s)
			}
		}
	}
}

func BenchmarkEncodedSize(b *testing.B) {
	m := benchRequest().Messages[7]
	n := 0
	for b.Loop() {
		n += EncodedSize(m)
	}
	_ = n
}
