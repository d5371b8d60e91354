package mock

import (
	"context"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var (
	_ tempwatch.DeviceStore    = (*DeviceStore)(nil)
	_ tempwatch.ReadingWriter  = (*ReadingWriter)(nil)
	_ tempwatch.PayloadArchive = (*PayloadArchive)(nil)
	_ tempwatch.ArchiveOutbox  = (*ArchiveOutbox)(nil)
)

// DeviceStore is a fake tempwatch.DeviceStore.
type DeviceStore struct {
	DevicesByRefFn    func(ctx context.Context, refs []tempwatch.DeviceRef) (map[tempwatch.DeviceRef]tempwatch.Device, error)
	DeviceByKeyHashFn func(ctx context.Context, hash []byte) (tempwatch.Device, error)
	ClientIDsBySlugFn func(ctx context.Context, slugs []string) (map[string]string, error)
}

// DevicesByRef calls DevicesByRefFn.
func (s *DeviceStore) DevicesByRef(ctx context.Context, refs []tempwatch.DeviceRef) (map[tempwatch.DeviceRef]tempwatch.Device, error) {
	return s.DevicesByRefFn(ctx, refs)
}

// DeviceByKeyHash calls DeviceByKeyHashFn.
func (s *DeviceStore) DeviceByKeyHash(ctx context.Context, hash []byte) (tempwatch.Device, error) {
	return s.DeviceByKeyHashFn(ctx, hash)
}

// ClientIDsBySlug calls ClientIDsBySlugFn.
func (s *DeviceStore) ClientIDsBySlug(ctx context.Context, slugs []string) (map[string]string, error) {
	return s.ClientIDsBySlugFn(ctx, slugs)
}

// ReadingWriter is a fake tempwatch.ReadingWriter.
type ReadingWriter struct {
	WriteReadingsFn func(ctx context.Context, rs []tempwatch.Reading) ([]tempwatch.WriteResult, error)
}

// WriteReadings calls WriteReadingsFn.
func (w *ReadingWriter) WriteReadings(ctx context.Context, rs []tempwatch.Reading) ([]tempwatch.WriteResult, error) {
	return w.WriteReadingsFn(ctx, rs)
}

// PayloadArchive is a fake tempwatch.PayloadArchive.
type PayloadArchive struct {
	InsertRawPayloadsFn func(ctx context.Context, ps []tempwatch.RawPayload) error
	InsertDeadLettersFn func(ctx context.Context, ds []tempwatch.DeadLetter) error
}

// InsertRawPayloads calls InsertRawPayloadsFn.
func (a *PayloadArchive) InsertRawPayloads(ctx context.Context, ps []tempwatch.RawPayload) error {
	return a.InsertRawPayloadsFn(ctx, ps)
}

// InsertDeadLetters calls InsertDeadLettersFn.
func (a *PayloadArchive) InsertDeadLetters(ctx context.Context, ds []tempwatch.DeadLetter) error {
	return a.InsertDeadLettersFn(ctx, ds)
}

// ArchiveOutbox is a fake tempwatch.ArchiveOutbox.
type ArchiveOutbox struct {
	StashFn   func(ctx context.Context, ps []tempwatch.RawPayload, ds []tempwatch.DeadLetter) error
	DrainFn   func(ctx context.Context, archive tempwatch.PayloadArchive, limit int) (int, error)
	PendingFn func(ctx context.Context) (tempwatch.OutboxPending, error)
}

// Stash calls StashFn.
func (o *ArchiveOutbox) Stash(ctx context.Context, ps []tempwatch.RawPayload, ds []tempwatch.DeadLetter) error {
	return o.StashFn(ctx, ps, ds)
}

// Drain calls DrainFn.
func (o *ArchiveOutbox) Drain(ctx context.Context, archive tempwatch.PayloadArchive, limit int) (int, error) {
	return o.DrainFn(ctx, archive, limit)
}

// Pending calls PendingFn.
func (o *ArchiveOutbox) Pending(ctx context.Context) (tempwatch.OutboxPending, error) {
	return o.PendingFn(ctx)
}
