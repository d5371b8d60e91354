package tempwatch

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzPayloadFields checks that decoding into payloadFields finds what
// ParsePayload's rules were written against: encoding/json decoding into a
// map[string]json.RawMessage, the same members with the same raw values,
// and an error for the same inputs; and that jsonString reads those values
// as encoding/json reads them into a string.
func FuzzPayloadFields(f *testing.F) {
	for _, s := range []string{`{"value":21.5}`, `{"value":1,"value":2}`, `{"VALUE":1,"Value":2,"value":3}`,
		`{"val\u0075e":1,"temperature":null}`, "{\"unit\":\"\xff\",\"seq\":1}", `{"ts":{"a":[1,{"b":2}]},"x":1}`,
		`{"value":1}x`, `{"value":1,}`, `{"value" 1}`, `{"seq":01}`, "{\"\xffvalue\":1}", `{} `, " \t\n{\"timestamp\":\"z\"}\r"} {
		f.Add([]byte(s))
	}
	for _, depth := range []int{9999, 10000} { // encoding/json's nesting limit
		f.Add([]byte(`{"x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `,"value":1}`))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m map[string]json.RawMessage
		errV1 := json.Unmarshal(b, &m)
		var fs payloadFields
		err := fs.decode(b)
		if (errV1 != nil) != (err != nil) {
			t.Fatalf("decode(%q): error %v, encoding/json into a map: %v", b, err, errV1)
		}
		if err != nil {
			return
		}
		for name, raw := range map[string][]byte{"value": fs.Value, "temperature": fs.Temperature, "ts": fs.TS,
			"timestamp": fs.Timestamp, "unit": fs.Unit, "seq": fs.Seq} {
			want, ok := m[name]
			if ok != (raw != nil) || !bytes.Equal(raw, want) {
				t.Fatalf("decode(%q).%s = %q (present %v), encoding/json into a map: %q (present %v)", b, name, raw, raw != nil, want, ok)
			}
			if raw == nil {
				continue
			}
			var wantS string
			wantErr := json.Unmarshal(raw, &wantS)
			if s, err := jsonString(raw); (err != nil) != (wantErr != nil) || s != wantS {
				t.Fatalf("jsonString(%q) = %q, %v; encoding/json: %q, %v", raw, s, err, wantS, wantErr)
			}
		}
	})
}
