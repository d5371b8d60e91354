package ferret_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tempwatch/tempwatch/infra/embedded/ferret"
)

func TestStartServesMongoDriver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	uri, stop, err := ferret.Start(ctx, t.TempDir(), "127.0.0.1:0")
	require.NoError(t, err)
	defer stop()
	require.Contains(t, uri, "mongodb://127.0.0.1:")

	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	require.NoError(t, err)
	defer func() { _ = client.Disconnect(context.Background()) }()
	require.NoError(t, client.Ping(ctx, nil))

	coll := client.Database("tempwatch").Collection("raw_payloads")
	name, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "sensor", Value: 1}, {Key: "ts", Value: -1}},
		Options: options.Index().SetName("sensor_ts"),
	})
	require.NoError(t, err)
	assert.Equal(t, "sensor_ts", name)

	docs := []any{
		bson.D{{Key: "sensor", Value: "s1"}, {Key: "ts", Value: 1}, {Key: "temp", Value: 21.5}},
		bson.D{{Key: "sensor", Value: "s1"}, {Key: "ts", Value: 2}, {Key: "temp", Value: 22.0}, {Key: "humidity", Value: 40}},
		bson.D{{Key: "sensor", Value: "s2"}, {Key: "ts", Value: 1}, {Key: "temp", Value: 19.0}},
	}
	res, err := coll.InsertMany(ctx, docs)
	require.NoError(t, err)
	assert.Len(t, res.InsertedIDs, 3)

	n, err := coll.CountDocuments(ctx, bson.D{{Key: "sensor", Value: "s1"}})
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)

	var got struct {
		Sensor   string  `bson:"sensor"`
		Temp     float64 `bson:"temp"`
		Humidity int     `bson:"humidity"`
	}
	err = coll.FindOne(ctx, bson.D{{Key: "sensor", Value: "s1"}},
		options.FindOne().SetSort(bson.D{{Key: "ts", Value: -1}})).Decode(&got)
	require.NoError(t, err)
	assert.Equal(t, 22.0, got.Temp)
	assert.Equal(t, 40, got.Humidity)

	cur, err := coll.Indexes().List(ctx)
	require.NoError(t, err)
	var idx []bson.M
	require.NoError(t, cur.All(ctx, &idx))
	var names []string
	for _, i := range idx {
		names = append(names, i["name"].(string))
	}
	assert.Contains(t, names, "sensor_ts")
}

func TestStopReleasesAddress(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	uri, stop, err := ferret.Start(ctx, dir, "127.0.0.1:0")
	require.NoError(t, err)
	stop()
	stop() // idempotent

	addr := uri[len("mongodb://") : len(uri)-1]
	uri2, stop2, err := ferret.Start(ctx, dir, addr)
	require.NoError(t, err, "restart on the same address and data directory")
	defer stop2()
	assert.Equal(t, uri, uri2)
}
