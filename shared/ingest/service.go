// Package ingest is the readings write path: it parses and validates device
// messages from the MQTT bridge's batches and from HTTP devices, stores them
// in bulk, archives the raw payloads, dead-letters what it rejects, and keeps
// the latest-reading cache current.
package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Item outcomes. Every message of a batch ends in exactly one of them.
const (
	StatusStored    = "stored"    // inserted now
	StatusDuplicate = "duplicate" // its (sensor, time) was already stored, or earlier in the batch
	StatusRejected  = "rejected"  // refused for good, dead-lettered
	StatusRetry     = "retry"     // a transient failure: send it again
)

// Message sources, recorded with raw payloads and dead letters.
const (
	SourceMQTT = "mqtt"
	SourceHTTP = "http"
)

// LatestCache is the part of the read cache ingest feeds (redis.Cache). It
// never fails the batch: the readings are committed, a failure is reported
// where it happens, and the entries expire.
type LatestCache interface {
	OfferLatest(ctx context.Context, rs ...tempwatch.Reading)
	InvalidateAggregates(ctx context.Context, sensorIDs ...string)
}

// Config holds the validation window and how the archive is written. Zero
// values take the defaults.
type Config struct {
	// MaxFuture is how far ahead of the server clock a reading may be; default 5 min.
	MaxFuture time.Duration
	// MaxAge is how old a reading may be (late buffered readings, backfill); default 365 days.
	MaxAge time.Duration
	// Now is the validation clock; default time.Now.
	Now func() time.Time

	// Outbox keeps the raw payloads and dead letters the archive could not
	// take, until they are drained into it; nil: their messages are retried.
	Outbox tempwatch.ArchiveOutbox
	// ArchiveTimeout bounds one archive write; default 2 s.
	ArchiveTimeout time.Duration
	// DrainInterval is the least time between two drains of the outbox by
	// one instance; default 2 s.
	DrainInterval time.Duration
	// DrainBudget bounds one drain, which the batch it runs alongside
	// waits for; default 500 ms.
	DrainBudget time.Duration
}

// Service ingests readings.
type Service struct {
	devices  *DeviceCache
	readings tempwatch.ReadingWriter
	archive  *archiver
	latest   LatestCache
	log      *slog.Logger
	cfg      Config
}

// NewService returns a Service. latest may be nil (no cache to feed).
func NewService(devices *DeviceCache, readings tempwatch.ReadingWriter, archive tempwatch.PayloadArchive,
	latest LatestCache, log *slog.Logger, cfg Config) *Service {
	if cfg.MaxFuture <= 0 {
		cfg.MaxFuture = 5 * time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 365 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ArchiveTimeout <= 0 {
		cfg.ArchiveTimeout = 2 * time.Second
	}
	if cfg.DrainInterval <= 0 {
		cfg.DrainInterval = 2 * time.Second
	}
	if cfg.DrainBudget <= 0 {
		cfg.DrainBudget = 500 * time.Millisecond
	}
	return &Service{devices: devices, readings: readings, latest: latest, log: log, cfg: cfg,
		archive: &archiver{archive: archive, outbox: cfg.Outbox, log: log,
			timeout: cfg.ArchiveTimeout, every: cfg.DrainInterval, budget: cfg.DrainBudget}}
}

// item is one message on its way through a batch.
type item struct {
	id         string
	topic      string
	source     string
	raw        []byte
	size       int // the message's full length when raw holds only its first bytes
	receivedAt time.Time

	ref      tempwatch.DeviceRef
	clientID string // the client the message names, when known (dead letters are listed by it)
	device   tempwatch.Device
	payload  tempwatch.Payload
	reading  tempwatch.Reading

	status    string
	reason    string
	class     string // the reason's class, a bounded metric label
	readingID int64
	createdAt time.Time
	inserted  bool  // this call inserted its row (even if its archive entry then failed)
	firstOf   *item // for an in-batch duplicate, the item it repeats
}

// Rejection reason classes: the reason label of the ingest metrics, a few
// values where the reasons themselves name values and devices.
const (
	reasonRefused        = "refused" // the bridge or the SQS body refused it before parsing
	reasonInvalidTopic   = "invalid_topic"
	reasonInvalidPayload = "invalid_payload"
	reasonUnknownSensor  = "unknown_sensor"
	reasonOutOfRange     = "out_of_range"
	reasonTooNew         = "too_new"
	reasonTooOld         = "too_old"
)

func (it *item) reject(class, reason string) {
	it.status, it.reason, it.class = StatusRejected, reason, class
}

// Batch sources, the source label of the batch duration.
const (
	batchBridge = "bridge"
	batchSQS    = "sqs"
	batchHTTP   = "http"
)

// HandleBatch ingests a bridge batch. It never fails as a whole: transient
// failures put the affected messages in BatchItemFailures.
//
// The counts partition the batch: every message is accepted (stored now),
// a duplicate, rejected (listed in Rejections, dead-lettered), or in
// BatchItemFailures. A message the bridge refused (Message.Refused) is
// rejected with that reason, unparsed. A message whose raw payload or dead
// letter reached neither MongoDB nor the PostgreSQL outbox is in
// BatchItemFailures: the retry finds the reading as a duplicate and stores
// its raw payload (the same batch again is skipped; in another batch it is
// a second copy, see mongo.PayloadStore).
func (s *Service) HandleBatch(ctx context.Context, req tempwatch.BatchRequest) tempwatch.BatchResponse {
	return s.handleBatch(ctx, req, batchBridge)
}

func (s *Service) handleBatch(ctx context.Context, req tempwatch.BatchRequest, source string) tempwatch.BatchResponse {
	all := make([]item, len(req.Messages)) // one allocation, not one per message
	items := make([]*item, len(req.Messages))
	refs := map[string]tempwatch.DeviceRef{} // a device sends many messages per batch
	for i, m := range req.Messages {
		all[i] = item{id: m.ID, topic: m.Topic, source: SourceMQTT, raw: m.Payload, size: m.Size, receivedAt: m.ReceivedAt}
		it := &all[i]
		items[i] = it
		if m.Refused != "" {
			it.reject(reasonRefused, m.Refused)
		}
		ref, ok := refs[m.Topic]
		if !ok {
			var err error
			if ref, err = tempwatch.ParseTopic(m.Topic); err != nil {
				if it.status == "" {
					it.reject(reasonInvalidTopic, err.Error())
				}
				continue
			}
			refs[m.Topic] = ref
		}
		it.ref = ref
	}
	s.process(ctx, items, nil, source)

	resp := tempwatch.BatchResponse{BatchItemFailures: []tempwatch.BatchItemFailure{}}
	for _, it := range items {
		switch it.status {
		case StatusStored:
			resp.Accepted++
		case StatusDuplicate:
			resp.Duplicates++
		case StatusRejected:
			resp.Rejected++
			resp.Rejections = append(resp.Rejections, tempwatch.Rejection{ID: it.id, Reason: it.reason})
		default:
			resp.BatchItemFailures = append(resp.BatchItemFailures, tempwatch.BatchItemFailure{ItemIdentifier: it.id})
		}
	}
	return resp
}

// process runs items through parse, resolve, validate, write and archive
// (side by side), and cache; a due drain of the archive outbox runs
// alongside. device, when not nil, is the already-authenticated sender of
// all items (HTTP); otherwise each item's ref is resolved. The outcomes and
// the batch's duration (by source) go to the invocation's metrics.
func (s *Service) process(ctx context.Context, items []*item, device *tempwatch.Device, source string) {
	start := time.Now()
	defer func() {
		countOutcomes(ctx, items)
		metrics.Since(ctx, metrics.IngestBatchDuration, start, source)
	}()
	defer s.archive.drainAlongside(ctx)()
	now := s.cfg.Now()
	for _, it := range items {
		if it.status != "" {
			continue
		}
		p, err := tempwatch.ParsePayload(it.raw)
		if err != nil {
			it.reject(reasonInvalidPayload, err.Error())
			continue
		}
		it.payload = p
	}

	if err := s.resolve(ctx, items, device); err != nil {
		s.log.ErrorContext(ctx, "resolve devices", "error", err)
		s.failPending(items)
	} else {
		s.nameClients(ctx, items)
	}

	for _, it := range items {
		if it.status == "" {
			s.validate(it, now)
		}
	}

	batch, written := s.dedup(items)
	// The archive is keyed by the readings' natural key, known before the
	// write, so it goes to MongoDB while the readings go to PostgreSQL.
	// Its input is gathered first: the write below changes item states.
	archive := s.archiveJob(written, items)
	archived := make(chan archiveResult, 1)
	go func() { archived <- archive(ctx) }()
	if len(batch) > 0 {
		results, err := s.readings.WriteReadings(ctx, batch)
		if err != nil {
			s.log.ErrorContext(ctx, "write readings", "error", err, "readings", len(batch))
			if tempwatch.ErrorCode(err) == tempwatch.ENOTFOUND {
				// A cached sensor was deleted: drop the batch's devices from
				// the cache so the retry resolves them afresh.
				s.devices.Forget(ctx, devicesOf(written))
			}
			s.failPending(items)
		} else {
			for i, r := range results {
				it := written[i]
				it.readingID, it.createdAt, it.inserted = r.ReadingID, r.CreatedAt, r.Inserted
				if r.Inserted {
					it.status = StatusStored
				} else {
					it.status = StatusDuplicate
				}
			}
			for _, it := range items {
				if it.firstOf != nil {
					it.status, it.readingID = StatusDuplicate, it.firstOf.readingID
				}
			}
		}
	}
	// The cache needs only what the write decided (inserted rows, ids), not
	// the archive's outcome: feed it while the archive finishes.
	var cached sync.WaitGroup
	cached.Go(func() { s.feedCache(ctx, items) })
	(<-archived).apply(items)
	cached.Wait()
}

// countOutcomes counts the items stored, duplicate or rejected (by reason
// class) per client. A message whose client is not known (a bad topic, an
// unknown client) counts under client "unknown", so a sender cannot add
// label values; those to retry are no outcome yet.
func countOutcomes(ctx context.Context, items []*item) {
	set := metrics.From(ctx)
	if set == nil {
		return
	}
	type outcome struct{ client, status, reason string }
	n := map[outcome]float64{} // a batch has few outcomes: one Add each
	for _, it := range items {
		if it.status != StatusStored && it.status != StatusDuplicate && it.status != StatusRejected {
			continue
		}
		client := "unknown"
		if it.clientID != "" && it.ref.ClientSlug != "" {
			client = it.ref.ClientSlug
		}
		reason := "none"
		if it.status == StatusRejected {
			reason = it.class
		}
		n[outcome{client, it.status, reason}]++
	}
	for o, c := range n {
		set.Add(metrics.IngestReadings, c, o.client, o.status, o.reason)
	}
}

// resolve fills each item's device, rejecting pending items of unknown
// devices. Items already rejected are resolved too where their topic names
// a device, for their dead letters.
func (s *Service) resolve(ctx context.Context, items []*item, device *tempwatch.Device) error {
	if device != nil {
		for _, it := range items {
			it.device, it.ref, it.clientID = *device, device.Ref(), device.ClientID
		}
		return nil
	}
	refs := make([]tempwatch.DeviceRef, 0, len(items))
	for _, it := range items {
		if it.status == "" || (it.status == StatusRejected && it.ref.ClientSlug != "") {
			refs = append(refs, it.ref)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	found, err := s.devices.Resolve(ctx, refs)
	if err != nil {
		return fmt.Errorf("resolve %d devices: %w", len(refs), err)
	}
	for _, it := range items {
		if it.status != "" && it.status != StatusRejected {
			continue
		}
		d, ok := found[it.ref]
		if ok {
			it.device, it.clientID = d, d.ClientID
		} else if it.status == "" {
			it.reject(reasonUnknownSensor, fmt.Sprintf("unknown device %q for client %q", it.ref.DeviceID, it.ref.ClientSlug))
		}
	}
	return nil
}

// nameClients fills the client of rejected items whose device is unknown
// from their topic's slug, in one lookup for the batch. Without it their
// dead letters go unattributed: logged, not fatal.
func (s *Service) nameClients(ctx context.Context, items []*item) {
	var slugs []string
	for _, it := range items {
		if it.status == StatusRejected && it.clientID == "" && it.ref.ClientSlug != "" {
			slugs = append(slugs, it.ref.ClientSlug)
		}
	}
	if len(slugs) == 0 {
		return
	}
	ids, err := s.devices.ClientIDs(ctx, slugs)
	if err != nil {
		s.log.WarnContext(ctx, "look up the clients of dead letters; they are stored without their client", "error", err)
	}
	for _, it := range items {
		if it.status == StatusRejected && it.clientID == "" {
			it.clientID = ids[it.ref.ClientSlug]
		}
	}
}

// validate checks the value, in °C, against the sensor's range (min_value
// and max_value are taken as °C, like alert thresholds) and the time against
// the window, and builds the reading.
func (s *Service) validate(it *item, now time.Time) {
	v := it.payload.Celsius(it.device.Unit)
	if v < it.device.MinValue || v > it.device.MaxValue {
		it.reject(reasonOutOfRange, fmt.Sprintf("value %g °C is outside the sensor's range [%g, %g]", v, it.device.MinValue, it.device.MaxValue))
		return
	}
	at := it.payload.Time
	if at.IsZero() {
		at = it.receivedAt
		if at.IsZero() {
			at = now
		}
		at = at.UTC().Truncate(time.Microsecond)
	}
	switch {
	case at.After(now.Add(s.cfg.MaxFuture)):
		it.reject(reasonTooNew, fmt.Sprintf("timestamp %s is more than %s in the future", at.Format(time.RFC3339), s.cfg.MaxFuture))
		return
	case at.Before(now.Add(-s.cfg.MaxAge)):
		it.reject(reasonTooOld, fmt.Sprintf("timestamp %s is older than the maximum age %s", at.Format(time.RFC3339), s.cfg.MaxAge))
		return
	}
	it.reading = tempwatch.Reading{SensorID: it.device.SensorID, Value: v, MeasuredAt: at}
	if it.payload.HasSeq {
		seq := it.payload.Seq
		it.reading.Seq = &seq
	}
}

// dedup returns the readings to write, unique by natural key, and the items
// they came from (same index); later repeats in the batch point at the first.
func (s *Service) dedup(items []*item) ([]tempwatch.Reading, []*item) {
	type key struct {
		sensor string
		at     int64
	}
	first := make(map[key]*item, len(items))
	batch := make([]tempwatch.Reading, 0, len(items))
	written := make([]*item, 0, len(items))
	for _, it := range items {
		if it.status != "" {
			continue
		}
		k := key{it.reading.SensorID, it.reading.MeasuredAt.UnixMicro()}
		if f, ok := first[k]; ok {
			it.firstOf = f
			continue
		}
		first[k] = it
		batch = append(batch, it.reading)
		written = append(written, it)
	}
	return batch, written
}

// failPending marks every item not yet decided as to retry.
func (s *Service) failPending(items []*item) {
	for _, it := range items {
		if it.status == "" {
			it.status, it.reason = StatusRetry, "temporarily unavailable"
		}
	}
}

// archiveResult is the outcome of archive: the items whose archive entry
// could not be stored.
type archiveResult struct {
	rawFailed, deadFailed []*item
}

// archiveJob returns a function that stores the raw payloads of the readings
// to write (one per natural key: an in-batch repeat shares its first's) and
// the dead letters of the items rejected so far, side by side, in the
// archive or else its outbox.
func (s *Service) archiveJob(written, items []*item) func(context.Context) archiveResult {
	raws := make([]tempwatch.RawPayload, len(written))
	for i, it := range written {
		raws[i] = tempwatch.RawPayload{SensorID: it.reading.SensorID, MeasuredAt: it.reading.MeasuredAt,
			Topic: it.topic, Source: it.source, ReceivedAt: it.receivedAt, Raw: it.raw}
	}
	var dead []tempwatch.DeadLetter
	var deadItems []*item
	for _, it := range items {
		if it.status == StatusRejected {
			dead = append(dead, tempwatch.DeadLetter{MessageID: it.id, ClientID: it.clientID, SensorID: it.device.SensorID,
				Reason: it.reason, Topic: it.topic, Source: it.source, ReceivedAt: it.receivedAt, Raw: it.raw, Size: it.size})
			deadItems = append(deadItems, it)
		}
	}
	return func(ctx context.Context) archiveResult {
		var res archiveResult
		rawLost, deadLost := s.archive.store(ctx, raws, dead)
		if rawLost {
			res.rawFailed = written
		}
		if deadLost {
			res.deadFailed = deadItems
		}
		return res
	}
}

// apply turns every item whose archive entry failed, and every in-batch
// repeat of one, into a retry (see HandleBatch).
func (r archiveResult) apply(items []*item) {
	for _, it := range r.rawFailed {
		it.status = StatusRetry
	}
	for _, it := range r.deadFailed {
		it.status = StatusRetry
	}
	for _, it := range items {
		if it.firstOf != nil && it.firstOf.status == StatusRetry {
			it.status = StatusRetry
		}
	}
}

// feedCache offers each sensor's newest inserted reading to the latest cache
// and invalidates the sensors' aggregates.
func (s *Service) feedCache(ctx context.Context, items []*item) {
	if s.latest == nil {
		return
	}
	newest := map[string]*item{}
	for _, it := range items {
		// Only rows this call inserted, including those whose raw payload
		// then failed: they are in PostgreSQL all the same.
		if !it.inserted {
			continue
		}
		if n, ok := newest[it.reading.SensorID]; !ok || it.reading.MeasuredAt.After(n.reading.MeasuredAt) {
			newest[it.reading.SensorID] = it
		}
	}
	if len(newest) == 0 {
		return
	}
	ids := make([]string, 0, len(newest))
	offers := make([]tempwatch.Reading, 0, len(newest))
	for id, it := range newest {
		ids = append(ids, id)
		offers = append(offers, tempwatch.Reading{ID: it.readingID, SensorID: id, Value: it.reading.Value,
			MeasuredAt: it.reading.MeasuredAt, CreatedAt: it.createdAt, Seq: it.reading.Seq})
	}
	s.latest.OfferLatest(ctx, offers...)
	s.latest.InvalidateAggregates(ctx, ids...)
}

func devicesOf(items []*item) []tempwatch.Device {
	seen := map[string]bool{}
	var ds []tempwatch.Device
	for _, it := range items {
		if !seen[it.device.SensorID] {
			seen[it.device.SensorID] = true
			ds = append(ds, it.device)
		}
	}
	return ds
}
