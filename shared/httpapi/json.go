package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// MaxBodyBytes caps every JSON request body.
const MaxBodyBytes = 1 << 20

// DecodeJSON reads r's body into dst: JSON only, at most MaxBodyBytes, no
// unknown fields (so a misspelt or forbidden field is named, not ignored),
// exactly one value, no string holding NUL or invalid UTF-8 and no nesting
// deeper than MaxJSONDepth (each refusal names its field).
func DecodeJSON(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return tempwatch.Errorf(tempwatch.EINVALID, "Content-Type must be application/json.")
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return tempwatch.Errorf(tempwatch.EINVALID, "The body could not be read.")
	}
	if err := checkJSONStrings(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return tempwatch.Errorf(tempwatch.EINVALID, "The body must hold a single JSON value.")
	}
	if n, _ := io.Copy(io.Discard, dec.Buffered()); n > 0 {
		return tempwatch.Errorf(tempwatch.EINVALID, "The body must hold a single JSON value.")
	}
	return nil
}

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return tempwatch.Errorf(tempwatch.EINVALID, "The body is empty; a JSON object is required.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return tempwatch.Errorf(tempwatch.EINVALID, "The body is truncated JSON (or larger than %d bytes).", MaxBodyBytes)
	case errors.As(err, &syn):
		return tempwatch.Errorf(tempwatch.EINVALID, "The body is not valid JSON (at byte %d).", syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return tempwatch.Invalid(field, fmt.Sprintf("must be a JSON %s", typ.Type.Kind()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return tempwatch.Invalid(field, "is not a known or writable field")
	default:
		return tempwatch.Errorf(tempwatch.EINVALID, "The body could not be read as JSON.")
	}
}

// JSON writes v with the given status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ServeJSON writes body as a 200 JSON response with a strong ETag, answering
// 304 when the client's If-None-Match already names it. It serves
// authenticated reads, which the Router marks Cache-Control: no-store: a
// client that keeps a copy itself still asks with its ETag.
func ServeJSON(w http.ResponseWriter, r *http.Request, body []byte) {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	hdr := w.Header()
	hdr.Set("ETag", etag)
	hdr.Set("Vary", "Authorization")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
