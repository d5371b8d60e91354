package mongo

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var (
	_ tempwatch.DeadLetterReader = (*PayloadStore)(nil)
	_ tempwatch.DeadLetterExpiry = (*PayloadStore)(nil)
	_ tempwatch.PayloadFinder    = (*PayloadStore)(nil)
)

// deadLetterTTLIndex names the TTL index, so a changed time to live finds it.
const deadLetterTTLIndex = "received_at_ttl"

// sweepBatch is how many dead letters one round of a sweep deletes: one
// find and one delete per round, each of a bounded size.
const sweepBatch = 1000

// Server error codes the adapter tells apart.
const (
	codeIndexOptionsConflict = 85
	codeNotImplemented       = 238
)

// deadLetterIDPattern is what deadLetterID produces; anything else is no
// dead letter of ours.
var deadLetterIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

type deadLetterDoc struct {
	ID         string    `bson:"_id"`
	MessageID  string    `bson:"message_id"`
	Reason     string    `bson:"reason"`
	Topic      string    `bson:"topic"`
	Source     string    `bson:"source"`
	ClientID   string    `bson:"client_id"`
	SensorID   string    `bson:"sensor_id"`
	ReceivedAt time.Time `bson:"received_at"`
	Raw        []byte    `bson:"raw"`
	RawSize    int       `bson:"raw_size"`
	Head       []byte    `bson:"head"`
}

func (d deadLetterDoc) stored() tempwatch.StoredDeadLetter {
	head := d.Head
	if head == nil && d.Raw != nil { // stored before heads were
		head = d.Raw[:min(len(d.Raw), tempwatch.DeadLetterHeadBytes)]
	}
	return tempwatch.StoredDeadLetter{ID: d.ID, Head: head, DeadLetter: tempwatch.DeadLetter{
		MessageID: d.MessageID, ClientID: d.ClientID, SensorID: d.SensorID, Reason: d.Reason, Topic: d.Topic,
		Source: d.Source, ReceivedAt: d.ReceivedAt.UTC(), Raw: d.Raw, Size: max(d.RawSize, len(d.Raw)),
	}}
}

// FindDeadLetters returns up to f.Page.Limit+1 dead letters newest received
// first, then by id descending, without their kept bytes.
func (s *PayloadStore) FindDeadLetters(ctx context.Context, f tempwatch.DeadLetterFilter) ([]tempwatch.StoredDeadLetter, error) {
	out := []tempwatch.StoredDeadLetter{}
	if f.ClientID == "" && !f.AllClients {
		return out, nil
	}
	filter := bson.D{}
	if f.ClientID != "" {
		filter = append(filter, bson.E{Key: "client_id", Value: f.ClientID})
	}
	if f.SensorID != "" {
		filter = append(filter, bson.E{Key: "sensor_id", Value: f.SensorID})
	}
	received := bson.D{}
	from := f.Since
	if f.From.After(from) {
		from = f.From
	}
	if !from.IsZero() {
		received = append(received, bson.E{Key: "$gte", Value: ceilMillis(from)})
	}
	if !f.To.IsZero() {
		received = append(received, bson.E{Key: "$lt", Value: ceilMillis(f.To)})
	}
	c := f.Page.Cursor
	if c != nil {
		if !deadLetterIDPattern.MatchString(c.ID) {
			return nil, tempwatch.Invalid("cursor", "does not belong to this list")
		}
		// Redundant with the $or below, but a bound the index scan can use.
		received = append(received, bson.E{Key: "$lte", Value: c.CreatedAt})
	}
	if len(received) > 0 {
		filter = append(filter, bson.E{Key: "received_at", Value: received})
	}
	if c != nil {
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "received_at", Value: bson.D{{Key: "$lt", Value: c.CreatedAt}}}},
			bson.D{{Key: "received_at", Value: c.CreatedAt}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: c.ID}}}},
		}})
	}
	opts := options.Find().
		SetSort(bson.D{{Key: "received_at", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(f.Page.Limit + 1)).
		SetProjection(bson.D{{Key: "raw", Value: 0}})
	cur, err := s.dead.Find(ctx, filter, opts)
	if err != nil {
		return nil, translate(err, "find dead letters")
	}
	defer func() { _ = cur.Close(ctx) }()
	for cur.Next(ctx) {
		var d deadLetterDoc
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("mongo: decode dead letter: %w", err)
		}
		out = append(out, d.stored())
	}
	if err := cur.Err(); err != nil {
		return nil, translate(err, "find dead letters")
	}
	return out, nil
}

// FindDeadLetterByID returns the dead letter with id and its kept bytes, or ENOTFOUND.
func (s *PayloadStore) FindDeadLetterByID(ctx context.Context, id string) (tempwatch.StoredDeadLetter, error) {
	notFound := tempwatch.NotFound("Dead letter")
	if !deadLetterIDPattern.MatchString(id) {
		return tempwatch.StoredDeadLetter{}, notFound
	}
	var d deadLetterDoc
	err := s.dead.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return tempwatch.StoredDeadLetter{}, notFound
	case err != nil:
		return tempwatch.StoredDeadLetter{}, translate(err, "find dead letter")
	}
	return d.stored(), nil
}

// EnsureDeadLetterTTL creates (or, for a changed ttl, updates) a TTL index
// on received_at, so MongoDB itself deletes expired dead letters. FerretDB
// answers that TTL indexes are not implemented: it reports false, not an
// error, and the caller sweeps instead.
func (s *PayloadStore) EnsureDeadLetterTTL(ctx context.Context, ttl time.Duration) (bool, error) {
	secs := int32(ttl / time.Second)
	_, err := s.dead.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "received_at", Value: 1}},
		Options: options.Index().SetName(deadLetterTTLIndex).SetExpireAfterSeconds(secs),
	})
	var ce mongo.CommandError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ce) && ce.Code == codeNotImplemented:
		return false, nil
	case errors.As(err, &ce) && ce.Code == codeIndexOptionsConflict:
		// The index exists with another time to live: change it in place.
		cmd := bson.D{{Key: "collMod", Value: DeadLettersCollection}, {Key: "index", Value: bson.D{
			{Key: "name", Value: deadLetterTTLIndex}, {Key: "expireAfterSeconds", Value: secs}}}}
		if err := s.dead.Database().RunCommand(ctx, cmd).Err(); err != nil {
			return false, fmt.Errorf("mongo: change dead letter TTL: %w", err)
		}
		return true, nil
	default:
		return false, fmt.Errorf("mongo: dead letter TTL index: %w", err)
	}
}

// SweepDeadLetters deletes up to limit dead letters received before cutoff,
// sweepBatch at a time, so one call's work is bounded however many expired.
func (s *PayloadStore) SweepDeadLetters(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	expired := bson.D{{Key: "received_at", Value: bson.D{{Key: "$lt", Value: cutoff.UTC()}}}}
	deleted := 0
	for deleted < limit {
		n := min(sweepBatch, limit-deleted)
		cur, err := s.dead.Find(ctx, expired, options.Find().SetLimit(int64(n)).SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return deleted, translate(err, "find expired dead letters")
		}
		var ids []struct {
			ID string `bson:"_id"`
		}
		if err := cur.All(ctx, &ids); err != nil {
			return deleted, translate(err, "find expired dead letters")
		}
		if len(ids) == 0 {
			break
		}
		in := make(bson.A, len(ids))
		for i, id := range ids {
			in[i] = id.ID
		}
		res, err := s.dead.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: in}}}})
		if err != nil {
			return deleted, fmt.Errorf("mongo: delete expired dead letters: %w", err)
		}
		deleted += int(res.DeletedCount)
		if len(ids) < n || res.DeletedCount == 0 {
			break
		}
	}
	return deleted, nil
}

// ceilMillis rounds t up to the millisecond BSON dates hold, so a bound
// between two milliseconds compares as the exact bound would.
func ceilMillis(t time.Time) time.Time {
	if m := t.Truncate(time.Millisecond); !m.Equal(t) {
		return m.Add(time.Millisecond).UTC()
	}
	return t.UTC()
}
