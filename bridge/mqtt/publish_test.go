package mqtt

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// packet encodes p as paho does on the wire.
func packet(t *testing.T, p packets.ControlPacket) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, p.Write(&b))
	return b.Bytes()
}

func publishPacket(t *testing.T, topic string, payload []byte, qos byte, id uint16, dup bool) []byte {
	t.Helper()
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.TopicName, p.Payload, p.Qos, p.MessageID, p.Dup = topic, payload, qos, id, dup
	return packet(t, p)
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

func TestPublishReaderDeliversPublishesAndPassesTheRest(t *testing.T) {
	const bufSize = 1024
	big := bytes.Repeat([]byte("x"), 2*bufSize)
	var stream, rest []byte
	var want []publish
	add := func(b []byte, deliver *publish) {
		stream = append(stream, b...)
		if deliver != nil {
			want = append(want, *deliver)
		} else {
			rest = append(rest, b...)
		}
	}
	connack := packets.NewControlPacket(packets.Connack).(*packets.ConnackPacket)
	add(packet(t, connack), nil)
	for i := range 40 {
		topic := "tempwatch/acme/sensors/dev-" + string(rune('a'+i%26)) + "/readings"
		payload := []byte(`{"value":` + string(rune('0'+i%10)) + `}`)
		id := uint16(i + 1)
		add(publishPacket(t, topic, payload, 1, id, i%3 == 0), &publish{topic: topic, payload: payload, size: len(payload), qos: 1, id: id, dup: i%3 == 0})
		switch i % 8 {
		case 1:
			add(packet(t, packets.NewControlPacket(packets.Pingresp)), nil)
		case 3:
			add(publishPacket(t, "q0", []byte("zero"), 0, 0, false), &publish{topic: "q0", payload: []byte("zero"), size: 4})
		case 5:
			add(publishPacket(t, "q2", []byte("two"), 2, 7, false), nil) // paho runs QoS 2's handshake
		case 6:
			add(publishPacket(t, "big", big, 1, 9, false), nil) // larger than the buffer: paho's
		case 7:
			suback := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
			suback.MessageID, suback.ReturnCodes = 3, []byte{1}
			add(packet(t, suback), nil)
		}
	}
	add(publishPacket(t, "empty", []byte{}, 1, 99, false), &publish{topic: "empty", payload: []byte{}, qos: 1, id: 99})

	for _, max := range []int{1, 3, 64, 4096} {
		var got []publish
		pr := newPublishReader(&chunked{b: stream, r: rand.New(rand.NewPCG(uint64(max), 1)), max: max}, bufSize,
			func(p publish) { got = append(got, p) })
		var r io.Reader = pr
		if max < 64 { // as paho reads a header: a byte at a time
			r = iotest.OneByteReader(pr)
		}
		passed, err := io.ReadAll(r)
		require.NoError(t, err)
		assert.Equal(t, rest, passed, "reads of up to %d: the other packets reach paho byte for byte", max)
		assert.Equal(t, want, got, "reads of up to %d: the QoS 0 and 1 publishes are delivered in order", max)
	}
}

func TestPublishReaderPassesMalformedPublishes(t *testing.T) {
	ok := publishPacket(t, "t", []byte("p"), 1, 5, false)
	tests := []struct {
		name string
		pkt  []byte
	}{
		{"QoS 1 with identifier 0", publishPacket(t, "t", []byte("p"), 1, 0, false)},
		{"topic longer than the packet", []byte{0x32, 4, 0, 9, 't', 0}},
		{"no room for the identifier", []byte{0x32, 3, 0, 1, 't'}},
		{"no topic length", []byte{0x30, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []publish
			pr := newPublishReader(bytes.NewReader(append(append([]byte{}, tt.pkt...), ok...)), 256,
				func(p publish) { got = append(got, p) })
			passed := make([]byte, len(tt.pkt))
			_, err := io.ReadFull(pr, passed)
			require.NoError(t, err)
			assert.Equal(t, tt.pkt, passed, "handed to paho as it came")
			_, err = pr.Read(make([]byte, 1))
			assert.ErrorIs(t, err, io.EOF)
			require.Len(t, got, 1, "the well-formed publish after it is delivered")
			assert.Equal(t, uint16(5), got[0].id)
		})
	}
	t.Run("remaining length of five bytes", func(t *testing.T) {
		bad := []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}
		pr := newPublishReader(bytes.NewReader(append(append([]byte{}, bad...), ok...)), 256,
			func(publish) { t.Error("nothing can be trusted after a bad length") })
		passed, err := io.ReadAll(pr)
		require.NoError(t, err)
		assert.Equal(t, append(bad, ok...), passed, "everything goes to paho, which drops the connection")
	})
}

// failingReader returns its data, then err, then its data again.
type failingReader struct {
	data  [][]byte
	errAt int
	err   error
	reads int
}

func (f *failingReader) Read(p []byte) (int, error) {
	f.reads++
	if f.reads == f.errAt {
		return 0, f.err
	}
	if len(f.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.data[0])
	f.data = f.data[1:]
	return n, nil
}

func TestPublishReaderReturnsAnErrorOnceAndGoesOn(t *testing.T) {
	pub := publishPacket(t, "t", []byte("p"), 1, 1, false)
	ping := packet(t, packets.NewControlPacket(packets.Pingresp))
	// A deadline expiring between two reads is not the end of the connection.
	f := &failingReader{data: [][]byte{pub[:3], pub[3:], ping}, errAt: 2, err: os.ErrDeadlineExceeded}
	var got []publish
	pr := newPublishReader(f, 256, func(p publish) { got = append(got, p) })
	p := make([]byte, 10)
	_, err := pr.Read(p)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Empty(t, got, "half a publish is not delivered")
	n, err := pr.Read(p)
	require.NoError(t, err)
	assert.Equal(t, ping, p[:n])
	assert.Len(t, got, 1)
	_, err = pr.Read(p)
	assert.ErrorIs(t, err, io.EOF)
	_, err = pr.Read(p)
	assert.ErrorIs(t, err, io.EOF, "and again")
	assert.False(t, errors.Is(err, os.ErrDeadlineExceeded))
}

func TestPublishReaderTruncatesLargePayloads(t *testing.T) {
	const bufSize, maxPayload, head = 1024, 1500, 16
	big := make([]byte, 10*bufSize)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	longTopic := string(bytes.Repeat([]byte("t"), bufSize))
	var stream, rest []byte
	var want []publish
	add := func(b []byte, deliver *publish) {
		stream = append(stream, b...)
		if deliver != nil {
			want = append(want, *deliver)
		} else {
			rest = append(rest, b...)
		}
	}
	small := []byte(`{"value":1}`)
	add(publishPacket(t, "a", small, 1, 1, false), &publish{topic: "a", payload: small, size: len(small), qos: 1, id: 1})
	add(publishPacket(t, "big", big, 1, 2, true), &publish{topic: "big", payload: big[:head], size: len(big), qos: 1, id: 2, dup: true})
	add(packet(t, packets.NewControlPacket(packets.Pingresp)), nil)
	add(publishPacket(t, "q0", big[:maxPayload+1], 0, 0, false), &publish{topic: "q0", payload: big[:head], size: maxPayload + 1})
	add(publishPacket(t, "limit", big[:maxPayload], 1, 3, false), nil) // larger than the buffer, not than maxPayload: paho's
	add(publishPacket(t, longTopic, big, 1, 4, false), nil)            // topic and head do not fit the buffer: paho's
	add(publishPacket(t, "id0", big, 1, 0, false), nil)                // malformed: paho's, to fail on
	add(publishPacket(t, "q2", big, 2, 5, false), nil)                 // QoS 2: paho runs its handshake
	add(publishPacket(t, "b", small, 1, 6, false), &publish{topic: "b", payload: small, size: len(small), qos: 1, id: 6})

	for _, max := range []int{1, 3, 64, 700, 4096} {
		var got []publish
		pr := newPublishReader(&chunked{b: stream, r: rand.New(rand.NewPCG(uint64(max), 2)), max: max}, bufSize,
			func(p publish) { got = append(got, p) })
		pr.maxPayload, pr.head = maxPayload, head
		var r io.Reader = pr
		if max < 64 {
			r = iotest.OneByteReader(pr)
		}
		passed, err := io.ReadAll(r)
		require.NoError(t, err)
		assert.Equal(t, rest, passed, "reads of up to %d: what is not truncated reaches paho byte for byte", max)
		assert.Equal(t, want, got, "reads of up to %d: heads of large payloads, in order", max)
	}
}

// TestPublishReaderNeverHoldsALargePayload reads a 10 MiB message: what it
// allocates must be the head, not the message.
func TestPublishReaderNeverHoldsALargePayload(t *testing.T) {
	pkt := publishPacket(t, "tempwatch/acme/sensors/d/readings", make([]byte, 10<<20), 1, 7, false)
	var got []publish
	pr := newPublishReader(bytes.NewReader(pkt), readBufferSize, func(p publish) { got = append(got, p) })
	pr.maxPayload, pr.head = 64<<10, 1<<10
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := io.Copy(io.Discard, pr)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Len(t, got[0].payload, 1<<10)
	assert.Equal(t, 10<<20, got[0].size)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(256<<10), "bytes allocated while reading it")
}
