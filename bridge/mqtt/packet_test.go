package mqtt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// paho's packet encoder is the oracle: an implementation that is not ours.

func encode(t testing.TB, p packets.ControlPacket) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, p.Write(&b))
	return b.Bytes()
}

func publishPacket(t testing.TB, topic string, payload []byte, qos byte, id uint16, dup, retain bool) []byte {
	t.Helper()
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.TopicName, p.Payload, p.Qos, p.MessageID, p.Dup, p.Retain = topic, payload, qos, id, dup, retain
	return encode(t, p)
}

// chunked returns b in reads of random sizes from 1 to max bytes.
type chunked struct {
	b   []byte
	r   *rand.Rand
	max int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.b), 1+c.r.IntN(c.max))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

// control is a packet other than PUBLISH as next returns it.
type control struct {
	first byte
	body  []byte
}

// readAll reads every packet of r until the stream ends.
func readAll(r *reader) (pubs []publish, others []control, err error) {
	for {
		first, body, err := r.next(func(p publish) { pubs = append(pubs, p) })
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return pubs, others, err
		}
		others = append(others, control{first, body})
	}
}

func newTestReader(src io.Reader, size, maxPayload, head int) *reader {
	return &reader{br: bufio.NewReaderSize(src, size), maxPayload: maxPayload, head: head}
}

func TestReaderDeliversPublishesAndReturnsTheRest(t *testing.T) {
	const bufSize = 1024
	big := bytes.Repeat([]byte("x"), 3*bufSize)
	var stream []byte
	var wantPubs []publish
	var wantOthers []control
	other := func(p packets.ControlPacket) {
		b := encode(t, p)
		stream = append(stream, b...)
		wantOthers = append(wantOthers, control{b[0], b[2:]})
	}
	connack := packets.NewControlPacket(packets.Connack).(*packets.ConnackPacket)
	connack.SessionPresent = true
	other(connack)
	for i := range 40 {
		topic := "tempwatch/acme/sensors/dev-" + string(rune('a'+i%26)) + "/readings"
		payload := []byte(`{"value":` + string(rune('0'+i%10)) + `}`)
		id := uint16(i + 1)
		stream = append(stream, publishPacket(t, topic, payload, 1, id, i%3 == 0, i%5 == 0)...)
		wantPubs = append(wantPubs, publish{topic: topic, payload: payload, size: len(payload), qos: 1, id: id, dup: i%3 == 0, retain: i%5 == 0})
		switch i % 8 {
		case 1:
			other(packets.NewControlPacket(packets.Pingresp))
		case 3:
			stream = append(stream, publishPacket(t, "q0", []byte("zero"), 0, 0, false, false)...)
			wantPubs = append(wantPubs, publish{topic: "q0", payload: []byte("zero"), size: 4})
		case 6: // larger than the buffer: read in pieces, whole
			stream = append(stream, publishPacket(t, "big", big, 1, 9, false, false)...)
			wantPubs = append(wantPubs, publish{topic: "big", payload: big, size: len(big), qos: 1, id: 9})
		case 7:
			suback := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
			suback.MessageID, suback.ReturnCodes = 1, []byte{1}
			other(suback)
		}
	}
	stream = append(stream, publishPacket(t, "empty", []byte{}, 1, 99, false, false)...)
	wantPubs = append(wantPubs, publish{topic: "empty", payload: []byte{}, qos: 1, id: 99})

	for _, max := range []int{1, 3, 64, 4096} {
		var src io.Reader = &chunked{b: stream, r: rand.New(rand.NewPCG(uint64(max), 1)), max: max}
		if max == 1 {
			src = iotest.OneByteReader(src)
		}
		pubs, others, err := readAll(newTestReader(src, bufSize, 0, 0))
		require.NoError(t, err)
		assert.Equal(t, wantOthers, others, "reads of up to %d: the other packets, in order", max)
		assert.Equal(t, wantPubs, pubs, "reads of up to %d: the publishes, in order", max)
	}
}

func TestReaderRefusesMalformedPackets(t *testing.T) {
	tests := []struct {
		name string
		pkt  []byte
	}{
		{"QoS 1 with identifier 0", publishPacket(t, "t", []byte("p"), 1, 0, false, false)},
		{"QoS 2 on a QoS 1 subscription", publishPacket(t, "t", []byte("p"), 2, 7, false, false)},
		{"QoS 3", []byte{0x36, 5, 0, 1, 't', 0, 1}},
		{"topic longer than the packet", []byte{0x32, 4, 0, 9, 't', 0}},
		{"no room for the identifier", []byte{0x32, 3, 0, 1, 't'}},
		{"no topic length", []byte{0x30, 1, 0}},
		{"remaining length of five bytes", []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"a control packet too long to be one", append([]byte{0x90, 100}, make([]byte, 100)...)},
		{"large, topic longer than the packet", append([]byte{0x32, 0x80, 0x10, 0xff, 0xff}, make([]byte, 2046)...)},
		{"large, QoS 1 with identifier 0", publishPacket(t, "t", make([]byte, 4096), 1, 0, false, false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestReader(bytes.NewReader(tt.pkt), 1024, 0, 0)
			_, _, err := r.next(func(p publish) { t.Errorf("delivered %+v", p) })
			assert.ErrorIs(t, err, errMalformed)
		})
	}
	t.Run("a stream ending inside a packet", func(t *testing.T) {
		pkt := publishPacket(t, "t", make([]byte, 3000), 1, 5, false, false)
		for _, cut := range []int{1, 2, 4, 100, 2000, len(pkt) - 1} {
			r := newTestReader(bytes.NewReader(pkt[:cut]), 1024, 0, 0)
			_, _, err := r.next(func(p publish) { t.Errorf("delivered %+v", p) })
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut after %d bytes", cut)
		}
	})
}

func TestReaderKeepsTheHeadOfLargePayloads(t *testing.T) {
	const bufSize, maxPayload, head = 1024, 1500, 16
	big := make([]byte, 10*bufSize)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	longTopic := string(bytes.Repeat([]byte("t"), 2*bufSize))
	small := []byte(`{"value":1}`)
	var stream []byte
	var want []publish
	add := func(pkt []byte, p publish) {
		stream = append(stream, pkt...)
		want = append(want, p)
	}
	add(publishPacket(t, "a", small, 1, 1, false, false), publish{topic: "a", payload: small, size: len(small), qos: 1, id: 1})
	add(publishPacket(t, "big", big, 1, 2, true, false), publish{topic: "big", payload: big[:head], size: len(big), qos: 1, id: 2, dup: true})
	add(publishPacket(t, "q0", big[:maxPayload+1], 0, 0, false, false), publish{topic: "q0", payload: big[:head], size: maxPayload + 1})
	add(publishPacket(t, "limit", big[:maxPayload], 1, 3, false, false), publish{topic: "limit", payload: big[:maxPayload], size: maxPayload, qos: 1, id: 3})
	add(publishPacket(t, longTopic, big, 1, 4, false, false), publish{topic: longTopic, payload: big[:head], size: len(big), qos: 1, id: 4})
	add(publishPacket(t, "b", small, 1, 6, false, false), publish{topic: "b", payload: small, size: len(small), qos: 1, id: 6})

	for _, max := range []int{1, 3, 64, 700, 4096} {
		r := newTestReader(&chunked{b: stream, r: rand.New(rand.NewPCG(uint64(max), 2)), max: max}, bufSize, maxPayload, head)
		got, _, err := readAll(r)
		require.NoError(t, err)
		assert.Equal(t, want, got, "reads of up to %d: heads of large payloads, in order", max)
	}
}

// A payload over maxPayload in a packet that fits the buffer is cut too.
func TestReaderKeepsTheHeadOfAPayloadOverTheLimitInTheBuffer(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 60)
	r := newTestReader(bytes.NewReader(publishPacket(t, "fits", payload, 1, 5, false, false)), 1024, 500, 16)
	pubs, _, err := readAll(r)
	require.NoError(t, err)
	assert.Equal(t, []publish{{topic: "fits", payload: payload[:16], size: 600, qos: 1, id: 5}}, pubs)
}

// TestReaderNeverHoldsALargePayload reads a 10 MiB message: what it
// allocates must be the head, not the message.
func TestReaderNeverHoldsALargePayload(t *testing.T) {
	pkt := publishPacket(t, "tempwatch/acme/sensors/d/readings", make([]byte, 10<<20), 1, 7, false, false)
	r := newTestReader(bytes.NewReader(pkt), readBufferSize, 64<<10, 1<<10)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, _, err := readAll(r)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Len(t, got[0].payload, 1<<10)
	assert.Equal(t, 10<<20, got[0].size)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(256<<10), "bytes allocated while reading it")
}

// The packets the client sends, decoded by paho.
func TestPacketsTheClientSends(t *testing.T) {
	read := func(b []byte) packets.ControlPacket {
		t.Helper()
		p, err := packets.ReadPacket(bytes.NewReader(b))
		require.NoError(t, err)
		return p
	}
	c := read(connectPacket("tempwatch-bridge-1", "tempwatch-bridge", "secret", false, 30*time.Second)).(*packets.ConnectPacket)
	assert.Equal(t, "MQTT", c.ProtocolName)
	assert.Equal(t, byte(4), c.ProtocolVersion)
	assert.Equal(t, "tempwatch-bridge-1", c.ClientIdentifier)
	assert.Equal(t, "tempwatch-bridge", c.Username)
	assert.Equal(t, []byte("secret"), c.Password)
	assert.True(t, c.UsernameFlag && c.PasswordFlag && !c.CleanSession && !c.WillFlag)
	assert.Equal(t, uint16(30), c.Keepalive)
	assert.Equal(t, byte(0), c.Validate(), "a valid CONNECT")

	anon := read(connectPacket("x", "", "", true, time.Second)).(*packets.ConnectPacket)
	assert.True(t, anon.CleanSession && !anon.UsernameFlag && !anon.PasswordFlag)

	s := read(subscribePacket(1, "$share/ingest/tempwatch/+/sensors/+/readings")).(*packets.SubscribePacket)
	assert.Equal(t, uint16(1), s.MessageID)
	assert.Equal(t, []string{"$share/ingest/tempwatch/+/sensors/+/readings"}, s.Topics)
	assert.Equal(t, []byte{1}, s.Qoss)

	acks := appendPuback(appendPuback(nil, 1), 0xfffe)
	r := bytes.NewReader(acks)
	for _, id := range []uint16{1, 0xfffe} {
		p, err := packets.ReadPacket(r)
		require.NoError(t, err)
		assert.Equal(t, id, p.(*packets.PubackPacket).MessageID)
	}
	assert.IsType(t, &packets.PingreqPacket{}, read(pingreqPacket))
	assert.IsType(t, &packets.DisconnectPacket{}, read(disconnectPacket))
	long := appendLength(nil, 268_435_455)
	assert.Equal(t, []byte{0xff, 0xff, 0xff, 0x7f}, long, "the longest remaining length")
}

// arrivals is a stream whose messages arrive one every `every` on the
// clock (a synctest bubble's): a Read returns what has arrived, or waits
// for the next.
type arrivals struct {
	start time.Time
	every time.Duration
	msgs  [][]byte
	next  int
	reads int
}

func (a *arrivals) due(i int) time.Time { return a.start.Add(time.Duration(i) * a.every) }

func (a *arrivals) Read(p []byte) (int, error) {
	if a.next == len(a.msgs) {
		return 0, io.EOF
	}
	time.Sleep(time.Until(a.due(a.next)))
	a.reads++
	n := 0
	for a.next < len(a.msgs) && !a.due(a.next).After(time.Now()) && n+len(a.msgs[a.next]) <= len(p) {
		n += copy(p[n:], a.msgs[a.next])
		a.next++
	}
	return n, nil
}

func TestPausingReaderTakesASteadyStreamInFewReads(t *testing.T) {
	for _, tt := range []struct {
		name      string
		pause     time.Duration
		wantReads int
	}{
		{"no pause: a read per message", 0, 200},
		// 200 messages 100 µs apart: 20 ms, in reads 5 ms apart.
		{"5 ms pauses", 5 * time.Millisecond, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := &arrivals{start: time.Now(), every: 100 * time.Microsecond}
				var want []byte
				for i := range 200 {
					m := []byte(fmt.Sprintf("m%03d;", i))
					src.msgs = append(src.msgs, m)
					want = append(want, m...)
				}
				var r io.Reader = src
				if tt.pause > 0 {
					r = &pausingReader{Reader: src, pause: tt.pause}
				}
				var got []byte
				buf := make([]byte, readBufferSize) // as the connection's bufio.Reader reads
				for {
					n, err := r.Read(buf)
					got = append(got, buf[:n]...)
					if err == io.EOF {
						break
					}
					require.NoError(t, err)
				}
				assert.Equal(t, want, got)
				assert.Equal(t, tt.wantReads, src.reads, "reads of the stream")
			})
		})
	}
}

// A read that fills a quarter of the buffer means the stream comes in
// bulk: the next read does not wait.
func TestPausingReaderDoesNotPauseABulkStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		r := &pausingReader{Reader: bytes.NewReader(make([]byte, 64<<10)), pause: 5 * time.Millisecond}
		buf := make([]byte, 16<<10)
		for range 4 {
			n, err := r.Read(buf)
			require.NoError(t, err)
			require.Equal(t, len(buf), n)
		}
		assert.Zero(t, time.Since(start), "no pause after full reads")
		_, err := r.Read(buf)
		assert.ErrorIs(t, err, io.EOF)
	})
}
