package broker_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/embedded/broker"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/deviceauth/deviceauthtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// connectPacket is an MQTT 3.1.1 CONNECT with a clean session: the broker
// adds the client when it is accepted and deletes it when it leaves.
func connectPacket(t *testing.T, user, key string, keepalive uint16) []byte {
	t.Helper()
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: true, Keepalive: keepalive, ClientIdentifier: user,
			UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(key),
		},
	}
	var buf bytes.Buffer
	require.NoError(t, pk.ConnectEncode(&buf))
	return buf.Bytes()
}

// mochi's own Close reads the client list under a read lock it takes twice
// (Clients.GetByListener calls Len inside it): a client that connects or
// leaves in between queues a write lock the second read waits behind, and
// Close never returns. Clients come and go here as fast as they can while
// the broker closes, many times over.
func TestCloseWhileClientsComeAndGo(t *testing.T) {
	devices := map[string]tempwatch.Device{keyA1: a1, keyA2: a2, keyB1: b1}
	auth, err := deviceauth.New(&deviceauthtest.Keys{Keys: devices}, deviceauth.Bridge{Password: bridgePass})
	require.NoError(t, err)
	hellos := make([][]byte, 0, len(devices))
	for key, d := range devices {
		hellos = append(hellos, connectPacket(t, deviceauth.Username(d.Ref()), key, 30))
	}
	for round := range 100 {
		srv, err := broker.Serve("127.0.0.1:0", auth)
		require.NoError(t, err)
		addr := strings.TrimPrefix(srv.URL(), "tcp://")
		var cycles atomic.Int64
		churning := make(chan struct{})
		var once sync.Once
		var wg sync.WaitGroup
		for _, hello := range hellos {
			wg.Go(func() {
				for {
					select {
					case <-srv.Done():
						return
					default:
					}
					c, err := net.Dial("tcp", addr)
					if err != nil {
						return
					}
					_ = c.SetDeadline(time.Now().Add(5 * time.Second))
					ack := make([]byte, 4)
					_, werr := c.Write(hello)
					_, rerr := io.ReadFull(c, ack)
					_ = c.Close()
					if werr != nil || rerr != nil {
						continue
					}
					if cycles.Add(1) >= 30 {
						once.Do(func() { close(churning) })
					}
				}
			})
		}
		select {
		case <-churning:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the clients did not get in (%d connections)", round, cycles.Load())
		}
		closed := make(chan struct{})
		go func() { srv.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Close did not return within 10 s with clients coming and going", round)
		}
		wg.Wait()
	}
}

// blockingKeys holds every lookup until release is closed, closing asked
// when the first one starts.
type blockingKeys struct {
	deviceauthtest.Keys
	asked, release chan struct{}
	once           sync.Once
}

func (k *blockingKeys) ByKey(ctx context.Context, key string) (tempwatch.Device, error) {
	k.once.Do(func() { close(k.asked) })
	select {
	case <-k.release:
	case <-ctx.Done():
		return tempwatch.Device{}, ctx.Err()
	}
	return k.Keys.ByKey(ctx, key)
}

// A client whose CONNECT is being authenticated when the broker closes is
// on no client list yet. Let in afterwards with keepalive 0 (no deadline),
// it would hold mochi's Close until it left: the broker closes its socket.
func TestCloseWhileAClientIsAuthenticated(t *testing.T) {
	keys := &blockingKeys{Keys: deviceauthtest.Keys{Keys: map[string]tempwatch.Device{keyA1: a1}},
		asked: make(chan struct{}), release: make(chan struct{})}
	auth, err := deviceauth.New(keys, deviceauth.Bridge{Password: bridgePass})
	require.NoError(t, err)
	srv, err := broker.Serve("127.0.0.1:0", auth)
	require.NoError(t, err)
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "tcp://"))
	require.NoError(t, err)
	defer c.Close()
	user := deviceauth.Username(a1.Ref())
	_, err = c.Write(connectPacket(t, user, keyA1, 0))
	require.NoError(t, err)
	select {
	case <-keys.asked:
	case <-time.After(5 * time.Second):
		t.Fatal("the broker never looked the key up")
	}
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	// The broker ends the connection; should it not, the lookup is let go
	// after a while and the client let in.
	lost := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, c); close(lost) }()
	select {
	case <-lost:
	case <-time.After(3 * time.Second):
	}
	close(keys.release)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: a client let in while it ran holds it")
	}
	select {
	case <-lost:
	default:
		t.Error("the connection outlived the broker")
	}
}
