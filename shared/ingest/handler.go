package ingest

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// HTTP ingest: the header carrying the device key, and the most items one request may hold.
const (
	MaxHTTPItems    = 1000
	DeviceKeyHeader = "X-Device-Key"
)

// ItemResult is the outcome of one item of an HTTP ingest request.
type ItemResult struct {
	Index     int    `json:"index"`
	Status    string `json:"status"` // stored, duplicate, rejected, retry
	ReadingID int64  `json:"reading_id,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// HTTPResponse is the body of POST /ingest/readings.
type HTTPResponse struct {
	Accepted   int          `json:"accepted"`
	Duplicates int          `json:"duplicates"`
	Rejected   int          `json:"rejected"`
	Retry      int          `json:"retry"`
	Items      []ItemResult `json:"items"`
}

// NewHandler serves POST /ingest/readings for devices that do not speak MQTT.
//
// The device authenticates with its key in the X-Device-Key header (never a
// user token); a missing or unknown key is a 401 problem. The body is one
// payload object or an array of at most MaxHTTPItems, at most 1 MiB in all.
// Every item is validated and deduplicated as MQTT messages are, and the
// answer gives a result per item (index into the array; 0 for a single
// object):
//
//   - 200 when every item is stored or a duplicate;
//   - 207 Multi-Status when some item is rejected or to retry — the good
//     items are stored all the same;
//   - 503 problem with Retry-After when nothing could be decided (the
//     database is down): the device sends the same body again.
func NewHandler(svc *Service, log *slog.Logger) http.Handler {
	rt := httpapi.NewRouter(log)
	rt.Public("POST /ingest/readings", func(w http.ResponseWriter, r *http.Request) error { return handleReadings(svc, log, w, r) })
	return rt
}

// handleReadings authenticates the device by its key, not by a user token:
// the route is public to the router.
func handleReadings(svc *Service, log *slog.Logger, w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	key := r.Header.Get(DeviceKeyHeader)
	if key == "" {
		return tempwatch.Errorf(tempwatch.EUNAUTHORIZED, "The %s header is required.", DeviceKeyHeader)
	}
	device, err := svc.devices.ByKey(ctx, key)
	if err != nil {
		if tempwatch.ErrorCode(err) == tempwatch.ENOTFOUND {
			err = tempwatch.Errorf(tempwatch.EUNAUTHORIZED, "The device key is not valid.")
		} else {
			log.ErrorContext(ctx, "look up device key", "error", err)
			err = tempwatch.Errorf(tempwatch.EUNAVAILABLE, "Ingest is temporarily unavailable; retry later.")
			w.Header().Set("Retry-After", "5")
		}
		return err
	}
	raws, err := readItems(r)
	if err != nil {
		return err
	}

	now := svc.cfg.Now().UTC()
	items := make([]*item, len(raws))
	for i, raw := range raws {
		items[i] = &item{id: strconv.Itoa(i), source: SourceHTTP, raw: raw, receivedAt: now,
			topic: device.Ref().Topic()}
	}
	svc.process(ctx, items, &device, batchHTTP)

	resp := HTTPResponse{Items: make([]ItemResult, len(items))}
	for i, it := range items {
		resp.Items[i] = ItemResult{Index: i, Status: it.status, ReadingID: it.readingID}
		switch it.status {
		case StatusStored:
			resp.Accepted++
		case StatusDuplicate:
			resp.Duplicates++
		case StatusRejected:
			resp.Rejected++
			resp.Items[i].Reason = it.reason
		default:
			resp.Retry++
			resp.Items[i].Reason = it.reason
		}
	}
	switch {
	case resp.Retry == len(items):
		w.Header().Set("Retry-After", "5")
		return tempwatch.Errorf(tempwatch.EUNAVAILABLE, "Ingest is temporarily unavailable; send the readings again later.")
	case resp.Rejected+resp.Retry > 0:
		httpapi.JSON(w, http.StatusMultiStatus, resp)
	default:
		httpapi.JSON(w, http.StatusOK, resp)
	}
	return nil
}

// readItems returns the body's items: the object itself, or the array's
// elements, each as raw JSON for the payload parser.
func readItems(r *http.Request) ([]json.RawMessage, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, tempwatch.Errorf(tempwatch.EINVALID, "Content-Type must be application/json.")
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, httpapi.MaxBodyBytes+1))
	if err != nil {
		return nil, tempwatch.Errorf(tempwatch.EINVALID, "The body could not be read.")
	}
	if len(body) > httpapi.MaxBodyBytes {
		return nil, tempwatch.Errorf(tempwatch.ETOOLARGE, "The body is larger than %d bytes.", httpapi.MaxBodyBytes)
	}
	body = bytes.TrimSpace(body)
	switch {
	case len(body) == 0:
		return nil, tempwatch.Errorf(tempwatch.EINVALID, "The body is empty; send a reading object or an array of them.")
	case body[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, tempwatch.Errorf(tempwatch.EINVALID, "The body is not a valid JSON array.")
		}
		if len(items) == 0 {
			return nil, tempwatch.Errorf(tempwatch.EINVALID, "The array is empty; send at least one reading.")
		}
		if len(items) > MaxHTTPItems {
			return nil, tempwatch.Errorf(tempwatch.ETOOLARGE, "The array holds %d readings; at most %d are allowed per request.", len(items), MaxHTTPItems)
		}
		return items, nil
	case body[0] == '{':
		// A malformed object is one rejected item, as it would be over MQTT.
		return []json.RawMessage{body}, nil
	default:
		return nil, tempwatch.Errorf(tempwatch.EINVALID, "The body must be a reading object or an array of them.")
	}
}
