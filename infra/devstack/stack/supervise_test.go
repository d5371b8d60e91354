package stack_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/devstack/stack/stacktest"
)

// TestSupervisedServersComeBack: devstack restarts the bridge, the embedded
// broker and the embedded FerretDB when they die, says so in its log, and
// each answers again where the functions were told it is. The embedded
// FerretDB keeps its data in FerretDir across stacks.
func TestSupervisedServersComeBack(t *testing.T) {
	env := stacktest.Env(t)
	delete(env, "MONGODB_URL") // the embedded FerretDB is one of the supervised servers
	ferretDir := t.TempDir()
	cfg := stack.Config{Root: "../../..", Instances: 1, Only: []string{"ingest"}, Bridge: true, FerretDir: ferretDir,
		Env: env}
	s, logs := stacktest.MustStart(t, cfg)
	require.True(t, s.BridgeRunning())
	ctx := context.Background()

	mongoURL := s.MongoDBURL()
	db := mustMongo(t, mongoURL)
	_, err := db.Collection("kept").InsertOne(ctx, bson.D{{Key: "_id", Value: "across runs"}})
	require.NoError(t, err)

	answers := map[string]func() bool{
		"bridge":               func() bool { return bridgeConnected(s.BridgeMetricsURL()) },
		"embedded MQTT broker": func() bool { return dials(hostOf(t, s.MQTTURL())) },
		"embedded FerretDB":    func() bool { return db.Client().Ping(ctx, nil) == nil },
	}
	for name, answering := range answers {
		t.Run(name, func(t *testing.T) {
			before := s.Restarts(name)
			s.KillSupervised(name)
			require.Eventually(t, func() bool { return s.Restarts(name) > before && answering() }, 30*time.Second, 20*time.Millisecond,
				"%s comes back", name)
			assert.Contains(t, logs.String(), "[devstack] "+name+" stopped unexpectedly (")
			assert.Contains(t, logs.String(), "[devstack] "+name+" restarted (restart ")
		})
	}
	assert.Equal(t, mongoURL, s.MongoDBURL(), "FerretDB came back where the functions look for it")

	require.NoError(t, s.Close())
	s2, _ := stacktest.MustStart(t, cfg)
	n, err := mustMongo(t, s2.MongoDBURL()).Collection("kept").CountDocuments(ctx, bson.D{{Key: "_id", Value: "across runs"}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the next stack finds what the last one stored")
}

// bridgeConnected reports whether the bridge at base answers /healthz and
// says it is connected to the broker again.
func bridgeConnected(base string) bool {
	if get(base+"/healthz") == "" {
		return false
	}
	return regexp.MustCompile(`(?m)^tempwatch_bridge_broker_connected 1$`).MatchString(get(base + "/metrics"))
}

// get is the body of a 200 answer to url, else "".
func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

func mustMongo(t *testing.T, uri string) *mongo.Database {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(2 * time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database("tempwatch")
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Host
}

func dials(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = c.Close()
	}
	return err == nil
}
