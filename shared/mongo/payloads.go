package mongo

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Collection names.
const (
	PayloadBatchesCollection = "raw_payload_batches"
	DeadLettersCollection    = "dead_letters"
)

// PayloadStore keeps raw device payloads and dead letters.
//
// Raw payloads are stored in batches (MongoDB's bucket pattern): one
// raw_payload_batches document holds the payloads of one ingest call, so
// the archive costs one insert per batch, not one per reading (on FerretDB
// a document per reading cost 67 µs of server CPU per reading, a batch
// document with the payloads packed 6 µs). A document:
//
//	_id       hash of the batch's natural keys: a retried batch is not stored twice
//	source    "mqtt" or "http"
//	sensors   the sensor of each stream (a reading's natural key is sensor + measured_at)
//	topics    the topic of each stream, same index
//	from, to  the batch's first and last measured_at (milliseconds, widened to cover it)
//	count     payloads in the batch
//	format    1: the encoding of entries
//	entries   the payloads packed in binary, sorted by stream then measured_at;
//	          per payload: uvarint stream index, varint measured_at and varint
//	          received_at (Unix µs), uvarint length, the bytes as sent
//
// A reading's payload is found by {sensors: id, from <= t <= to} (indexed).
// It is in more than one document when part of a batch was retried in
// another batch, or a redelivered message came back in a later batch; the
// copies are the same reading, and FindPayload returns the first one found.
//
// dead_letters documents: _id (a hash of message id, topic, receive time and
// bytes, so a retried batch does not add it twice), message_id, reason,
// topic, source, received_at, client_id and sensor_id (absent when the
// message named none we know), raw (at most MaxDeadLetterBytes), raw_size
// (the message's full length), and head (raw's first
// tempwatch.DeadLetterHeadBytes, so a list reads no more than it shows).
type PayloadStore struct {
	raw, dead *mongo.Collection
}

var _ tempwatch.PayloadArchive = (*PayloadStore)(nil)

// NewPayloadStore returns a PayloadStore on db.
func NewPayloadStore(db *mongo.Database) *PayloadStore {
	return &PayloadStore{raw: db.Collection(PayloadBatchesCollection), dead: db.Collection(DeadLettersCollection)}
}

// Ping tells whether the server answers.
func (s *PayloadStore) Ping(ctx context.Context) error {
	if err := s.raw.Database().Client().Ping(ctx, nil); err != nil {
		return fmt.Errorf("mongo: ping: %w", err)
	}
	return nil
}

// EnsureIndexes creates the indexes the lookups use: payload batches by
// sensor and time; dead letters in the lists' order (received_at, _id),
// alone for admins' lists and sweeps, after client_id for a client's list,
// so MongoDB never sorts a page in memory. (FerretDB's SQLite backend uses
// indexes for _id lookups only: there, lists and sweeps read the whole
// collection.)
func (s *PayloadStore) EnsureIndexes(ctx context.Context) error {
	if _, err := s.raw.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "sensors", Value: 1}, {Key: "from", Value: 1}}}); err != nil {
		return fmt.Errorf("mongo: index raw_payload_batches: %w", err)
	}
	if _, err := s.dead.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "received_at", Value: -1}, {Key: "_id", Value: -1}}},
		{Keys: bson.D{{Key: "client_id", Value: 1}, {Key: "received_at", Value: -1}, {Key: "_id", Value: -1}}},
	}); err != nil {
		return fmt.Errorf("mongo: index dead_letters: %w", err)
	}
	return nil
}

const (
	payloadFormat = 1
	// maxBatchBytes bounds the payload bytes of one document, well below
	// MongoDB's 16 MiB document limit (a payload is at most 64 KiB).
	maxBatchBytes = 8 << 20
	// MaxDeadLetterBytes is how much of a rejected payload is kept.
	MaxDeadLetterBytes = 256 << 10
)

type payloadBatch struct {
	ID      string      `bson:"_id"`
	Source  string      `bson:"source"`
	Sensors []string    `bson:"sensors"`
	Topics  []string    `bson:"topics"`
	From    time.Time   `bson:"from"`
	To      time.Time   `bson:"to"`
	Count   int         `bson:"count"`
	Format  int         `bson:"format"`
	Entries bson.Binary `bson:"entries"`
}

// InsertRawPayloads stores ps in one document per source (more when their
// bytes exceed maxBatchBytes). A batch stored before (same natural keys) is
// skipped; a payload repeated within ps is stored once.
func (s *PayloadStore) InsertRawPayloads(ctx context.Context, ps []tempwatch.RawPayload) error {
	if len(ps) == 0 {
		return nil
	}
	sorted := slices.Clone(ps)
	slices.SortStableFunc(sorted, func(a, b tempwatch.RawPayload) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.SensorID, b.SensorID),
			cmp.Compare(a.Topic, b.Topic), a.MeasuredAt.Compare(b.MeasuredAt))
	})
	sorted = slices.CompactFunc(sorted, func(a, b tempwatch.RawPayload) bool {
		return a.SensorID == b.SensorID && a.MeasuredAt.Equal(b.MeasuredAt)
	})
	var docs []any
	for len(sorted) > 0 {
		n, size := 1, len(sorted[0].Raw)
		for n < len(sorted) && sorted[n].Source == sorted[0].Source && size+len(sorted[n].Raw) <= maxBatchBytes {
			size += len(sorted[n].Raw)
			n++
		}
		docs = append(docs, packBatch(sorted[:n]))
		sorted = sorted[n:]
	}
	return insertIgnoringDuplicates(ctx, s.raw, docs, "raw payloads")
}

// packBatch builds the document of ps: one source, sorted by stream, then time.
func packBatch(ps []tempwatch.RawPayload) payloadBatch {
	b := payloadBatch{Source: ps[0].Source, Count: len(ps), Format: payloadFormat, From: ps[0].MeasuredAt, To: ps[0].MeasuredAt}
	h := sha256.New()
	var entries []byte
	for i, p := range ps {
		if i == 0 || p.SensorID != ps[i-1].SensorID || p.Topic != ps[i-1].Topic {
			b.Sensors = append(b.Sensors, p.SensorID)
			b.Topics = append(b.Topics, p.Topic)
		}
		b.From, b.To = minTime(b.From, p.MeasuredAt), maxTime(b.To, p.MeasuredAt)
		at := p.MeasuredAt.UnixMicro()
		entries = binary.AppendUvarint(entries, uint64(len(b.Sensors)-1))
		entries = binary.AppendVarint(entries, at)
		entries = binary.AppendVarint(entries, p.ReceivedAt.UnixMicro())
		entries = binary.AppendUvarint(entries, uint64(len(p.Raw)))
		entries = append(entries, p.Raw...)
		writeHashed(h, []byte(p.SensorID))
		writeHashed(h, binary.BigEndian.AppendUint64(nil, uint64(at)))
	}
	b.ID = hex.EncodeToString(h.Sum(nil)[:16])
	// BSON dates hold milliseconds: widen the range so it covers every µs.
	b.From = b.From.Truncate(time.Millisecond)
	if t := b.To.Truncate(time.Millisecond); !t.Equal(b.To) {
		b.To = t.Add(time.Millisecond)
	}
	b.Entries = bson.Binary{Data: entries}
	return b
}

// unpack calls yield with each payload of b until it returns false.
func (b payloadBatch) unpack(yield func(tempwatch.RawPayload) bool) error {
	if b.Format != payloadFormat {
		return fmt.Errorf("mongo: raw payload batch %s has format %d, want %d", b.ID, b.Format, payloadFormat)
	}
	r := bytes.NewReader(b.Entries.Data)
	for r.Len() > 0 {
		stream, err1 := binary.ReadUvarint(r)
		at, err2 := binary.ReadVarint(r)
		rcv, err3 := binary.ReadVarint(r)
		n, err4 := binary.ReadUvarint(r)
		if err := errors.Join(err1, err2, err3, err4); err != nil || stream >= uint64(len(b.Sensors)) ||
			stream >= uint64(len(b.Topics)) || n > uint64(r.Len()) {
			return fmt.Errorf("mongo: raw payload batch %s is corrupt", b.ID)
		}
		raw := make([]byte, n)
		_, _ = r.Read(raw)
		p := tempwatch.RawPayload{SensorID: b.Sensors[stream], Topic: b.Topics[stream], Source: b.Source,
			MeasuredAt: time.UnixMicro(at).UTC(), ReceivedAt: time.UnixMicro(rcv).UTC(), Raw: raw}
		if !yield(p) {
			return nil
		}
	}
	return nil
}

// FindPayload returns the raw payload of the reading (sensorID, measuredAt),
// or an ENOTFOUND error.
func (s *PayloadStore) FindPayload(ctx context.Context, sensorID string, measuredAt time.Time) (tempwatch.RawPayload, error) {
	at := measuredAt.UTC().Truncate(time.Microsecond)
	cur, err := s.raw.Find(ctx, bson.D{{Key: "sensors", Value: sensorID},
		{Key: "from", Value: bson.D{{Key: "$lte", Value: at}}}, {Key: "to", Value: bson.D{{Key: "$gte", Value: at}}}})
	if err != nil {
		return tempwatch.RawPayload{}, translate(err, "find raw payload")
	}
	defer func() { _ = cur.Close(ctx) }()
	for cur.Next(ctx) {
		var b payloadBatch
		if err := cur.Decode(&b); err != nil {
			return tempwatch.RawPayload{}, fmt.Errorf("mongo: decode raw payload batch: %w", err)
		}
		var found *tempwatch.RawPayload
		err := b.unpack(func(p tempwatch.RawPayload) bool {
			if p.SensorID == sensorID && p.MeasuredAt.Equal(at) {
				found = &p
			}
			return found == nil
		})
		if err != nil {
			return tempwatch.RawPayload{}, err
		}
		if found != nil {
			return *found, nil
		}
	}
	if err := cur.Err(); err != nil {
		return tempwatch.RawPayload{}, translate(err, "find raw payload")
	}
	return tempwatch.RawPayload{}, tempwatch.NotFound("Raw payload")
}

// CountPayloads returns how many distinct readings have a raw payload
// stored, and how many payloads are stored in all (copies included). It
// reads every batch: for tests and checks on small archives.
func (s *PayloadStore) CountPayloads(ctx context.Context) (distinct, stored int, err error) {
	cur, err := s.raw.Find(ctx, bson.D{})
	if err != nil {
		return 0, 0, fmt.Errorf("mongo: count raw payloads: %w", err)
	}
	defer func() { _ = cur.Close(ctx) }()
	type key struct {
		sensor string
		at     int64
	}
	seen := map[key]bool{}
	for cur.Next(ctx) {
		var b payloadBatch
		if err := cur.Decode(&b); err != nil {
			return 0, 0, fmt.Errorf("mongo: decode raw payload batch: %w", err)
		}
		err := b.unpack(func(p tempwatch.RawPayload) bool {
			seen[key{p.SensorID, p.MeasuredAt.UnixMicro()}] = true
			stored++
			return true
		})
		if err != nil {
			return 0, 0, err
		}
	}
	if err := cur.Err(); err != nil {
		return 0, 0, fmt.Errorf("mongo: count raw payloads: %w", err)
	}
	return len(seen), stored, nil
}

// InsertDeadLetters stores ds in one InsertMany.
func (s *PayloadStore) InsertDeadLetters(ctx context.Context, ds []tempwatch.DeadLetter) error {
	if len(ds) == 0 {
		return nil
	}
	docs := make([]any, len(ds))
	for i, d := range ds {
		doc := bson.D{
			{Key: "_id", Value: deadLetterID(d)},
			{Key: "message_id", Value: d.MessageID},
			{Key: "reason", Value: d.Reason},
			{Key: "topic", Value: d.Topic},
			{Key: "source", Value: d.Source},
			{Key: "received_at", Value: d.ReceivedAt.UTC()},
		}
		if d.ClientID != "" {
			doc = append(doc, bson.E{Key: "client_id", Value: d.ClientID})
		}
		if d.SensorID != "" {
			doc = append(doc, bson.E{Key: "sensor_id", Value: d.SensorID})
		}
		docs[i] = append(doc,
			bson.E{Key: "raw", Value: bson.Binary{Data: d.Raw[:min(len(d.Raw), MaxDeadLetterBytes)]}},
			bson.E{Key: "raw_size", Value: max(d.Size, len(d.Raw))},
			bson.E{Key: "head", Value: bson.Binary{Data: d.Raw[:min(len(d.Raw), tempwatch.DeadLetterHeadBytes)]}})
	}
	return insertIgnoringDuplicates(ctx, s.dead, docs, "dead letters")
}

func deadLetterID(d tempwatch.DeadLetter) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(d.MessageID), []byte(d.Topic), d.Raw} {
		writeHashed(h, part)
	}
	writeHashed(h, binary.BigEndian.AppendUint64(nil, uint64(d.ReceivedAt.UnixNano())))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// writeHashed writes b length-prefixed, so consecutive parts cannot run together.
func writeHashed(h hash.Hash, b []byte) {
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
	h.Write(b)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// insertIgnoringDuplicates inserts unordered, so one duplicate _id (an item
// stored by an earlier attempt) neither stops the others nor fails the call.
func insertIgnoringDuplicates(ctx context.Context, c *mongo.Collection, docs []any, what string) error {
	_, err := c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return nil
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0 {
		onlyDuplicates := true
		for _, we := range bwe.WriteErrors {
			if we.Code != 11000 {
				onlyDuplicates = false
				break
			}
		}
		if onlyDuplicates {
			return nil
		}
	}
	return fmt.Errorf("mongo: insert %s: %w", what, err)
}
