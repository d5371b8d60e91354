package mqtt

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests run the client against a scripted broker over net.Pipe in a
// synctest bubble: time passes only when every goroutine waits, so
// keepalives and timeouts are exact and instant, and synctest.Wait shows
// that nothing more happens.

// fakeBroker is one connection's broker side.
type fakeBroker struct {
	t    *testing.T
	conn net.Conn
	in   chan packets.ControlPacket // what the client sent, in order
	out  chan packets.ControlPacket // what to send it, in order
}

// pipeDialer hands each dial's broker side to brokers.
func pipeDialer(t *testing.T, brokers chan<- *fakeBroker) func(context.Context) (net.Conn, error) {
	return func(context.Context) (net.Conn, error) {
		client, server := net.Pipe()
		b := &fakeBroker{t: t, conn: server, in: make(chan packets.ControlPacket, 64), out: make(chan packets.ControlPacket, 64)}
		go func() { // net.Pipe writes wait for the reader
			for p := range b.out {
				if p.Write(server) != nil {
					return
				}
			}
		}()
		t.Cleanup(func() { close(b.out) })
		go func() {
			defer close(b.in)
			for {
				p, err := packets.ReadPacket(server)
				if err != nil {
					return
				}
				b.in <- p
			}
		}()
		brokers <- b
		return client, nil
	}
}

// next returns the client's next packet, failing if the client sent none
// and waits.
func (b *fakeBroker) next() packets.ControlPacket {
	b.t.Helper()
	synctest.Wait()
	select {
	case p, ok := <-b.in:
		if !ok {
			b.t.Fatal("the client closed the connection")
		}
		return p
	default:
		b.t.Fatal("the client sent nothing")
		return nil
	}
}

// quiet fails if the client sent anything.
func (b *fakeBroker) quiet(what string) {
	b.t.Helper()
	synctest.Wait()
	select {
	case p, ok := <-b.in:
		if ok {
			b.t.Fatalf("%s: the client sent %s", what, p)
		}
	default:
	}
}

func (b *fakeBroker) send(p packets.ControlPacket) {
	b.t.Helper()
	b.out <- p
}

// accept answers CONNECT and SUBSCRIBE.
func (b *fakeBroker) accept(present bool) {
	b.t.Helper()
	require.IsType(b.t, &packets.ConnectPacket{}, b.next())
	ack := packets.NewControlPacket(packets.Connack).(*packets.ConnackPacket)
	ack.SessionPresent = present
	b.send(ack)
	sub := b.next().(*packets.SubscribePacket)
	suback := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
	suback.MessageID, suback.ReturnCodes = sub.MessageID, []byte{1}
	b.send(suback)
}

func (b *fakeBroker) publish(id uint16, payload string, dup bool) {
	b.t.Helper()
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.TopicName, p.Payload, p.Qos, p.MessageID, p.Dup = "t/1", []byte(payload), 1, id, dup
	b.send(p)
}

func testOptions(dial func(context.Context) (net.Conn, error)) Options {
	return Options{URL: "tcp://broker.invalid:1883", ClientID: "tempwatch-bridge-test", Topic: "t/+",
		Username: "tempwatch-bridge", Password: "a-password-never-logged", KeepAlive: 10 * time.Second,
		ConnectTimeout: 5 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), dialer: dial}
}

// started subscribes through the pipe dialer, answering the first
// connection, and returns the subscriber and that connection.
func started(t *testing.T, o Options, brokers chan *fakeBroker, got chan Message) (*Subscriber, *fakeBroker) {
	t.Helper()
	subscribed := make(chan error, 1)
	var s *Subscriber
	go func() {
		var err error
		s, err = Subscribe(o, func(m Message) { got <- m })
		subscribed <- err
	}()
	b := <-brokers
	b.accept(true)
	require.NoError(t, <-subscribed)
	t.Cleanup(func() { s.Close(0) })
	return s, b
}

// startedReconnecting is started with a ReconnectDelay of 1 s: it
// returns where the next connections' brokers arrive, what the subscriber
// receives, and the first connection's broker.
func startedReconnecting(t *testing.T) (chan *fakeBroker, chan Message, *fakeBroker) {
	t.Helper()
	brokers := make(chan *fakeBroker, 4)
	got := make(chan Message, 8)
	o := testOptions(pipeDialer(t, brokers))
	o.ReconnectDelay = time.Second
	_, b := started(t, o, brokers, got)
	return brokers, got, b
}

func TestKeepAlivePingsAnIdleConnectionAndDropsASilentBroker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		brokers := make(chan *fakeBroker, 4)
		_, b := started(t, testOptions(pipeDialer(t, brokers)), brokers, make(chan Message, 8))
		start := time.Now()
		for i := range 3 {
			time.Sleep(5 * time.Second) // half the keepalive without a write
			require.IsType(t, &packets.PingreqPacket{}, b.next(), "ping %d", i+1)
			b.send(packets.NewControlPacket(packets.Pingresp))
		}
		assert.Equal(t, 15*time.Second, time.Since(start))

		time.Sleep(5 * time.Second)
		require.IsType(t, &packets.PingreqPacket{}, b.next()) // unanswered
		time.Sleep(10*time.Second - time.Nanosecond)
		synctest.Wait()
		assert.Empty(t, brokers, "still waiting for the PINGRESP")
		time.Sleep(time.Second)
		synctest.Wait()
		require.Len(t, brokers, 1, "no PINGRESP within the keepalive: the connection is dropped and dialed again")
		(<-brokers).accept(true)
	})
}

func TestKeepAliveCountsAcksAsTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		brokers := make(chan *fakeBroker, 4)
		got := make(chan Message, 8)
		_, b := started(t, testOptions(pipeDialer(t, brokers)), brokers, got)
		for i := range 4 {
			time.Sleep(4 * time.Second)
			b.publish(uint16(i+1), "m", false)
			synctest.Wait()
			AckAll([]Ack{(<-got).Ack})
			require.IsType(t, &packets.PubackPacket{}, b.next())
		}
		b.quiet("PUBACKs every 4 s keep the connection alive")
	})
}

// An ack goes to the connection its message came on: after a reconnect,
// an ack of a message from before it is dropped, though the broker sends
// the message again with the same packet id.
func TestAcksGoOnlyToTheirConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		brokers, got, first := startedReconnecting(t)
		first.publish(7, "m", false)
		synctest.Wait()
		old := <-got
		require.NoError(t, first.conn.Close())

		time.Sleep(time.Second) // ReconnectDelay
		second := <-brokers
		second.accept(true)
		second.publish(7, "m", true)
		synctest.Wait()
		again := <-got
		assert.True(t, again.Dup)

		AckAll([]Ack{old.Ack})
		second.quiet("an ack from the lost connection")
		AckAll([]Ack{again.Ack, {}})
		assert.Equal(t, uint16(7), second.next().(*packets.PubackPacket).MessageID)
	})
}

func TestAckAllWritesEachConnectionsAcksTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		brokers := make(chan *fakeBroker, 4)
		got := make(chan Message, 8)
		_, b := started(t, testOptions(pipeDialer(t, brokers)), brokers, got)
		for _, id := range []uint16{3, 1, 2} {
			b.publish(id, "m", false)
		}
		synctest.Wait()
		acks := []Ack{(<-got).Ack, (<-got).Ack, (<-got).Ack}
		AckAll([]Ack{acks[2], acks[0], acks[1]}) // in any order
		for _, id := range []uint16{2, 3, 1} {
			assert.Equal(t, id, b.next().(*packets.PubackPacket).MessageID)
		}
	})
}

func TestSubscribeFailsAtOnceWhenRefused(t *testing.T) {
	tests := []struct {
		name    string
		connack byte // 0: accept, then answer the SUBSCRIBE with suback
		suback  byte
		want    string
	}{
		{"bad credentials", 4, 0, "refused: bad user name or password (CONNACK 4)"},
		{"not authorized", 5, 0, "refused: not authorized (CONNACK 5)"},
		{"client id rejected", 2, 0, "refused: client identifier rejected (CONNACK 2)"},
		{"filter refused", 0, 0x80, "mqtt subscribe to t/+: subscription refused by the broker (SUBACK 0x80)"},
		{"QoS 0 granted", 0, 0, "granted QoS 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				brokers := make(chan *fakeBroker, 4)
				done := make(chan error, 1)
				go func() {
					_, err := Subscribe(testOptions(pipeDialer(t, brokers)), func(Message) {})
					done <- err
				}()
				b := <-brokers
				b.next()
				ack := packets.NewControlPacket(packets.Connack).(*packets.ConnackPacket)
				ack.ReturnCode = tt.connack
				b.send(ack)
				if tt.connack == 0 {
					sub := b.next().(*packets.SubscribePacket)
					suback := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
					suback.MessageID, suback.ReturnCodes = sub.MessageID, []byte{tt.suback}
					b.send(suback)
				}
				synctest.Wait()
				require.Len(t, done, 1, "Subscribe returned without waiting out its timeout")
				err := <-done
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.want)
				assert.NotContains(t, err.Error(), "a-password-never-logged")
				assert.Empty(t, brokers, "not retried")
			})
		})
	}
}

// A broker that is down at start-up is retried with backoff until
// ConnectTimeout, and Subscribe names what went wrong.
func TestSubscribeRetriesAnUnreachableBroker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dials := 0
		o := testOptions(func(context.Context) (net.Conn, error) {
			dials++
			return nil, errors.New("connection refused")
		})
		o.ReconnectDelay, o.MaxReconnectDelay = 100*time.Millisecond, time.Second
		start := time.Now()
		_, err := Subscribe(o, func(Message) {})
		require.Error(t, err)
		assert.Equal(t, o.ConnectTimeout, time.Since(start))
		assert.Contains(t, err.Error(), "no subscription within 5s; last error: mqtt dial tcp://broker.invalid:1883: connection refused")
		assert.Equal(t, 8, dials, "at once, then after 0.1, 0.2, 0.4, 0.8, 1, 1 and 1 s")
	})
}

func TestAProtocolErrorEndsTheConnection(t *testing.T) {
	for _, tt := range []struct {
		name string
		send func(*fakeBroker)
	}{
		{"a PUBACK for nothing the client published", func(b *fakeBroker) {
			p := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
			p.MessageID = 1
			b.send(p)
		}},
		{"a QoS 2 PUBLISH", func(b *fakeBroker) {
			p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
			p.TopicName, p.Qos, p.MessageID = "t/1", 2, 1
			b.send(p)
		}},
		{"a second CONNACK", func(b *fakeBroker) { b.send(packets.NewControlPacket(packets.Connack)) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				brokers, got, b := startedReconnecting(t)
				tt.send(b)
				synctest.Wait()
				_, open := <-b.in
				assert.False(t, open, "the client closed the connection")
				time.Sleep(time.Second)
				synctest.Wait()
				require.Len(t, brokers, 1, "and dialed again after ReconnectDelay")
				(<-brokers).accept(true)
				assert.Empty(t, got, "nothing was handed on")
			})
		})
	}
}

// Messages a persistent session kept may come before the SUBACK; they are
// handed on, in order.
func TestMessagesBeforeTheSubackAreHandedOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		brokers := make(chan *fakeBroker, 4)
		got := make(chan Message, 8)
		done := make(chan error, 1)
		go func() {
			s, err := Subscribe(testOptions(pipeDialer(t, brokers)), func(m Message) { got <- m })
			if err == nil {
				t.Cleanup(func() { s.Close(0) })
			}
			done <- err
		}()
		b := <-brokers
		b.next()
		ack := packets.NewControlPacket(packets.Connack).(*packets.ConnackPacket)
		ack.SessionPresent = true
		b.send(ack)
		sub := b.next().(*packets.SubscribePacket)
		for i, p := range []string{"kept-1", "kept-2"} {
			b.publish(uint16(i+1), p, true)
			synctest.Wait()
		}
		suback := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
		suback.MessageID, suback.ReturnCodes = sub.MessageID, []byte{1}
		b.send(suback)
		require.NoError(t, <-done)
		assert.Equal(t, "kept-1", string((<-got).Payload))
		assert.Equal(t, "kept-2", string((<-got).Payload))
	})
}

// Close sends DISCONNECT after what was written before it and waits for
// the broker to close; a message arriving meanwhile is not handed on.
func TestCloseDisconnectsAndHandsNothingOnAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		brokers := make(chan *fakeBroker, 4)
		got := make(chan Message, 8)
		s, b := started(t, testOptions(pipeDialer(t, brokers)), brokers, got)
		b.publish(1, "m", false)
		synctest.Wait()
		AckAll([]Ack{(<-got).Ack})
		closed := make(chan struct{})
		go func() { s.Close(time.Minute); close(closed) }()
		assert.IsType(t, &packets.PubackPacket{}, b.next())
		assert.IsType(t, &packets.DisconnectPacket{}, b.next())
		b.publish(2, "late", false)
		synctest.Wait()
		assert.Empty(t, closed, "Close waits for the broker to close the connection")
		assert.Empty(t, got, "nothing is handed on after Close")
		require.NoError(t, b.conn.Close())
		<-closed
		assert.Empty(t, brokers, "no reconnect after Close")
	})
}
