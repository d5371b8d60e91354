package mongo

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tempwatch/tempwatch/shared/telemetry"
)

// Collection names.
const (
	RawPayloadsCollection = "raw_payloads"
	DeadLettersCollection = "dead_letters"
)

// PayloadStore keeps raw device payloads and dead letters.
//
// raw_payloads documents: _id (the reading id, so a redelivered payload is
// not stored twice), reading_id, sensor_id, client_slug, device_id, topic,
// source, received_at, payload (the JSON object as a document), raw (bytes).
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

// EnsureIndexes creates the indexes the read side uses: a sensor's payloads
// by time and dead letters by time.
func (s *PayloadStore) EnsureIndexes(ctx context.Context) error {
	if _, err := s.raw.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "sensor_id", Value: 1}, {Key: "received_at", Value: -1}}}); err != nil {
		return fmt.Errorf("mongo: index raw_payloads: %w", err)
	}
	if _, err := s.dead.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "received_at", Value: -1}}}); err != nil {
		return fmt.Errorf("mongo: index dead_letters: %w", err)
	}
	return nil
}

// InsertRawPayloads stores ps in one InsertMany. A payload with ReadingID 0
// (a duplicate whose reading could not be found) gets a generated _id.
func (s *PayloadStore) InsertRawPayloads(ctx context.Context, ps []telemetry.RawPayload) error {
	if len(ps) == 0 {
		return nil
	}
	docs := make([]any, len(ps))
	for i, p := range ps {
		d := bson.D{}
		if p.ReadingID != 0 {
			d = append(d, bson.E{Key: "_id", Value: p.ReadingID}, bson.E{Key: "reading_id", Value: p.ReadingID})
		}
		d = append(d,
			bson.E{Key: "sensor_id", Value: p.SensorID},
			bson.E{Key: "client_slug", Value: p.ClientSlug},
			bson.E{Key: "device_id", Value: p.DeviceID},
			bson.E{Key: "topic", Value: p.Topic},
			bson.E{Key: "source", Value: p.Source},
			bson.E{Key: "received_at", Value: p.ReceivedAt.UTC()},
		)
		var doc bson.M
		if len(p.Payload) > 0 && bson.UnmarshalExtJSON(p.Payload, false, &doc) == nil && storableKeys(doc) {
			d = append(d, bson.E{Key: "payload", Value: doc})
		}
		d = append(d, bson.E{Key: "raw", Value: bson.Binary{Data: p.Raw}})
		docs[i] = d
	}
	return insertIgnoringDuplicates(ctx, s.raw, docs, "raw payloads")
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

// storableKeys tells whether every field name in v, at any depth, is one a
// server accepts: MongoDB before 5.0 and FerretDB refuse names starting with
// "$" or holding ".", and one refused document must not fail the batch again
// and again. Such payloads are kept as raw bytes only.
func storableKeys(v any) bool {
	switch x := v.(type) {
	case bson.M:
		for k, e := range x {
			if k == "" || k[0] == '$' || strings.Contains(k, ".") || !storableKeys(e) {
				return false
			}
		}
	case bson.D:
		for _, e := range x {
			if !storableKeys(bson.M{e.Key: e.Value}) {
				return false
			}
		}
	case bson.A:
		for _, e := range x {
			if !storableKeys(e) {
				return false
			}
		}
	}
	return true
}
