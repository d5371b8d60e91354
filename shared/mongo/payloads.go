package mongo

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tempwatch/tempwatch/shared/telemetry"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Collection names.
const (
	RawPayloadsCollection = "raw_payloads"
	DeadLettersCollection = "dead_letters"
)

// PayloadStore keeps raw device payloads and dead letters.
//
// raw_payloads documents, one per reading, kept small because every field
// costs (FerretDB parses and re-encodes each one): _id (PayloadID: the
// reading's natural key, so a redelivered payload is not stored twice and a
// reading's payload is found by _id, the one lookup FerretDB's SQLite
// backend answers from an index), topic (names client and device), source,
// received_at, raw (the bytes as sent).
//
// dead_letters documents: _id (a hash of message id, topic, receive time and
// bytes, so a retried batch does not add it twice), message_id, reason,
// topic, source, received_at, raw.
type PayloadStore struct {
	raw, dead *mongo.Collection
}

var _ telemetry.PayloadArchive = (*PayloadStore)(nil)

// NewPayloadStore returns a PayloadStore on db.
func NewPayloadStore(db *mongo.Database) *PayloadStore {
	return &PayloadStore{raw: db.Collection(RawPayloadsCollection), dead: db.Collection(DeadLettersCollection)}
}

// EnsureIndexes creates the indexes the read side uses: dead letters by
// time. raw_payloads needs none beyond _id: a reading's payload is found by
// its natural key, and a sensor's payloads over a time range by an _id range
// (PayloadID sorts by sensor, then time).
func (s *PayloadStore) EnsureIndexes(ctx context.Context) error {
	if _, err := s.dead.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "received_at", Value: -1}}}); err != nil {
		return fmt.Errorf("mongo: index dead_letters: %w", err)
	}
	return nil
}

// PayloadID is the raw_payloads _id of the reading (sensorID, measuredAt):
// the sensor id, a slash, and the UTC time with microseconds (readings'
// precision) in a fixed width, so ids sort by sensor, then time.
func PayloadID(sensorID string, measuredAt time.Time) string {
	return sensorID + "/" + measuredAt.UTC().Format(payloadTimeLayout)
}

const payloadTimeLayout = "2006-01-02T15:04:05.000000Z"

// InsertRawPayloads stores ps in one unordered InsertMany; payloads already
// stored (same reading) are skipped.
func (s *PayloadStore) InsertRawPayloads(ctx context.Context, ps []telemetry.RawPayload) error {
	if len(ps) == 0 {
		return nil
	}
	docs := make([]any, len(ps))
	for i, p := range ps {
		docs[i] = bson.D{
			{Key: "_id", Value: PayloadID(p.SensorID, p.MeasuredAt)},
			{Key: "topic", Value: p.Topic},
			{Key: "source", Value: p.Source},
			{Key: "received_at", Value: p.ReceivedAt.UTC()},
			{Key: "raw", Value: bson.Binary{Data: p.Raw}},
		}
	}
	return insertIgnoringDuplicates(ctx, s.raw, docs, "raw payloads")
}

// FindPayload returns the raw payload of the reading (sensorID, measuredAt),
// or an ENOTFOUND error.
func (s *PayloadStore) FindPayload(ctx context.Context, sensorID string, measuredAt time.Time) (telemetry.RawPayload, error) {
	var doc struct {
		Topic      string      `bson:"topic"`
		Source     string      `bson:"source"`
		ReceivedAt time.Time   `bson:"received_at"`
		Raw        bson.Binary `bson:"raw"`
	}
	err := s.raw.FindOne(ctx, bson.D{{Key: "_id", Value: PayloadID(sensorID, measuredAt)}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return telemetry.RawPayload{}, tempwatch.Errorf(tempwatch.ENOTFOUND, "Raw payload not found.")
	}
	if err != nil {
		return telemetry.RawPayload{}, fmt.Errorf("mongo: find raw payload: %w", err)
	}
	return telemetry.RawPayload{SensorID: sensorID, MeasuredAt: measuredAt.UTC().Truncate(time.Microsecond), Topic: doc.Topic,
		Source: doc.Source, ReceivedAt: doc.ReceivedAt.UTC(), Raw: doc.Raw.Data}, nil
}

// InsertDeadLetters stores ds in one InsertMany.
func (s *PayloadStore) InsertDeadLetters(ctx context.Context, ds []telemetry.DeadLetter) error {
	if len(ds) == 0 {
		return nil
	}
	docs := make([]any, len(ds))
	for i, d := range ds {
		docs[i] = bson.D{
			{Key: "_id", Value: deadLetterID(d)},
			{Key: "message_id", Value: d.MessageID},
			{Key: "reason", Value: d.Reason},
			{Key: "topic", Value: d.Topic},
			{Key: "source", Value: d.Source},
			{Key: "received_at", Value: d.ReceivedAt.UTC()},
			{Key: "raw", Value: bson.Binary{Data: d.Raw}},
		}
	}
	return insertIgnoringDuplicates(ctx, s.dead, docs, "dead letters")
}

func deadLetterID(d telemetry.DeadLetter) string {
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte(d.MessageID), []byte(d.Topic), d.Raw} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	binary.BigEndian.PutUint64(n[:], uint64(d.ReceivedAt.UnixNano()))
	h.Write(n[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
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
