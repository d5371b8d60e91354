package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

// The fast tier's view of ingest: the sorting of a batch into stored,
// duplicate and rejected, and what reaches the archive or its outbox, over
// the domain fakes (service_test.go runs the same paths on PostgreSQL,
// Redis and MongoDB).

// fakeDevices is mock.DeviceStore knowing one device, acme/dev-1, with the
// shared-lookup drop the device cache also needs.
type fakeDevices struct{ *mock.DeviceStore }

func (fakeDevices) ForgetDevices(context.Context, ...string) {}

func newFakeDevices() fakeDevices {
	dev := tempwatch.Device{SensorID: "s-1", ClientID: "c-acme", ClientSlug: "acme", DeviceID: "dev-1", Unit: "C", MinValue: -40, MaxValue: 85}
	return fakeDevices{&mock.DeviceStore{
		DevicesByRefFn: func(_ context.Context, refs []tempwatch.DeviceRef) (map[tempwatch.DeviceRef]tempwatch.Device, error) {
			out := map[tempwatch.DeviceRef]tempwatch.Device{}
			for _, r := range refs {
				if r == dev.Ref() {
					out[r] = dev
				}
			}
			return out, nil
		},
		ClientIDsBySlugFn: func(_ context.Context, slugs []string) (map[string]string, error) {
			return map[string]string{"acme": "c-acme"}, nil
		},
	}}
}

// fakeArchive records what reaches it; down makes every write fail.
type fakeArchive struct {
	mu       sync.Mutex
	down     bool
	payloads []tempwatch.RawPayload
	dead     []tempwatch.DeadLetter
}

func (a *fakeArchive) archive() *mock.PayloadArchive {
	return &mock.PayloadArchive{
		InsertRawPayloadsFn: func(_ context.Context, ps []tempwatch.RawPayload) error {
			return a.take(func() { a.payloads = append(a.payloads, ps...) })
		},
		InsertDeadLettersFn: func(_ context.Context, ds []tempwatch.DeadLetter) error {
			return a.take(func() { a.dead = append(a.dead, ds...) })
		},
	}
}

// take runs keep under the lock, or fails when the archive is down.
func (a *fakeArchive) take(keep func()) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down {
		return errors.New("archive down")
	}
	keep()
	return nil
}

// storedOnce is a reading writer that keeps one reading per sensor and
// measured time, as the readings table's key does.
func storedOnce() (*mock.ReadingWriter, func() []tempwatch.Reading) {
	var mu sync.Mutex
	var rows []tempwatch.Reading
	seen := map[string]bool{}
	w := &mock.ReadingWriter{WriteReadingsFn: func(_ context.Context, rs []tempwatch.Reading) ([]tempwatch.WriteResult, error) {
		mu.Lock()
		defer mu.Unlock()
		out := make([]tempwatch.WriteResult, len(rs))
		for i, r := range rs {
			k := r.SensorID + r.MeasuredAt.String()
			if !seen[k] {
				seen[k] = true
				rows = append(rows, r)
				out[i] = tempwatch.WriteResult{ReadingID: int64(len(rows)), CreatedAt: time.Now(), Inserted: true}
			}
		}
		return out, nil
	}}
	return w, func() []tempwatch.Reading {
		mu.Lock()
		defer mu.Unlock()
		return append([]tempwatch.Reading(nil), rows...)
	}
}

func TestHandleBatchFast(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	writer, rows := storedOnce()
	arch := &fakeArchive{}
	svc := ingest.NewService(ingest.NewDeviceCache(newFakeDevices(), ingest.DeviceCacheOptions{}), writer, arch.archive(), nil, quietLog(),
		ingest.Config{Now: func() time.Time { return now }})
	dev := topic("acme", "dev-1")
	batch := tempwatch.BatchRequest{Messages: []tempwatch.Message{
		msg("good", dev, fmt.Sprintf(`{"value":20,"ts":%q}`, at(-time.Minute)), now),
		msg("again", dev, fmt.Sprintf(`{"value":21,"ts":%q}`, at(-time.Minute)), now),
		msg("malformed", dev, `{"value":`, now),
		msg("unknown-device", topic("acme", "nope"), `{"value":20}`, now),
		msg("out-of-range", dev, `{"value":120}`, now),
	}}
	resp := svc.HandleBatch(context.Background(), batch)
	assert.Equal(t, 1, resp.Accepted)
	assert.Equal(t, 1, resp.Duplicates, "the second reading of one sensor and time")
	assert.Equal(t, []string{"malformed", "out-of-range", "unknown-device"}, rejectedIDs(resp))
	assert.Empty(t, resp.BatchItemFailures)
	require.Len(t, rows(), 1)
	assert.Equal(t, 20.0, rows()[0].Value, "the first of the two wins")

	assert.Len(t, arch.payloads, 1, "the stored reading's raw payload")
	assert.Len(t, arch.dead, 3, "one dead letter per rejected message")
	for _, d := range arch.dead {
		assert.NotEmpty(t, d.Reason)
	}

	// The same batch again: every reading a duplicate, nothing stored twice.
	again := svc.HandleBatch(context.Background(), batch)
	assert.Equal(t, 0, again.Accepted)
	assert.Equal(t, 2, again.Duplicates)
	assert.Len(t, rows(), 1)
}

func TestArchiveDownGoesToTheOutboxFast(t *testing.T) {
	now := time.Now().UTC()
	writer, rows := storedOnce()
	arch := &fakeArchive{down: true}
	var stashed struct {
		sync.Mutex
		payloads, dead int
	}
	outbox := &mock.ArchiveOutbox{
		StashFn: func(_ context.Context, ps []tempwatch.RawPayload, ds []tempwatch.DeadLetter) error {
			stashed.Lock()
			defer stashed.Unlock()
			stashed.payloads += len(ps)
			stashed.dead += len(ds)
			return nil
		},
		DrainFn: func(context.Context, tempwatch.PayloadArchive, int) (int, error) {
			return 0, errors.New("archive down")
		},
		PendingFn: func(context.Context) (tempwatch.OutboxPending, error) {
			return tempwatch.OutboxPending{}, nil
		},
	}
	svc := ingest.NewService(ingest.NewDeviceCache(newFakeDevices(), ingest.DeviceCacheOptions{}), writer, arch.archive(), nil, quietLog(),
		ingest.Config{Now: func() time.Time { return now }, Outbox: outbox})
	resp := svc.HandleBatch(context.Background(), tempwatch.BatchRequest{Messages: []tempwatch.Message{
		msg("good", topic("acme", "dev-1"), `{"value":4}`, now),
		msg("malformed", topic("acme", "dev-1"), `not json`, now),
	}})
	assert.Equal(t, 1, resp.Accepted)
	assert.Equal(t, 1, resp.Rejected)
	assert.Empty(t, resp.BatchItemFailures, "acknowledged: the outbox holds what the archive could not take")
	assert.Len(t, rows(), 1)
	stashed.Lock()
	defer stashed.Unlock()
	assert.Equal(t, 1, stashed.payloads)
	assert.Equal(t, 1, stashed.dead)
}
