package mqtt

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// The MQTT 3.1.1 packet types the client sends or takes (the first byte's
// high nibble).
const (
	typeConnect    = 1
	typeConnack    = 2
	typePublish    = 3
	typePuback     = 4
	typeSubscribe  = 8
	typeSuback     = 9
	typePingreq    = 12
	typePingresp   = 13
	typeDisconnect = 14
)

var (
	pingreqPacket    = []byte{typePingreq << 4, 0}
	disconnectPacket = []byte{typeDisconnect << 4, 0}
)

// errMalformed is a packet that breaks MQTT 3.1.1's encoding rules: the
// stream cannot be trusted past it, so the connection ends.
var errMalformed = errors.New("malformed packet")

// appendLength appends MQTT's variable-length encoding of n (at most four
// bytes, n < 268,435,456).
func appendLength(b []byte, n int) []byte {
	for {
		d := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// withHeader returns body behind the fixed header first.
func withHeader(first byte, body []byte) []byte {
	return append(appendLength([]byte{first}, len(body)), body...)
}

// connectPacket is a CONNECT for protocol level 4 (MQTT 3.1.1). Strings are
// checked by Options.check to fit their 16-bit lengths.
func connectPacket(clientID, username, password string, clean bool, keepAlive time.Duration) []byte {
	body := appendString(nil, "MQTT")
	body = append(body, 4)
	var flags byte
	if clean {
		flags |= 0x02
	}
	if username != "" {
		flags |= 0x80
	}
	if password != "" {
		flags |= 0x40
	}
	body = append(body, flags)
	body = binary.BigEndian.AppendUint16(body, uint16(keepAlive/time.Second))
	body = appendString(body, clientID)
	if username != "" {
		body = appendString(body, username)
	}
	if password != "" {
		body = appendString(body, password)
	}
	return withHeader(typeConnect<<4, body)
}

// subscribePacket asks for filter at QoS 1.
func subscribePacket(id uint16, filter string) []byte {
	body := binary.BigEndian.AppendUint16(nil, id)
	body = appendString(body, filter)
	return withHeader(typeSubscribe<<4|0x02, append(body, 1))
}

// appendPuback appends the PUBACK of packet id.
func appendPuback(b []byte, id uint16) []byte {
	return append(b, typePuback<<4, 2, byte(id>>8), byte(id))
}

// publish is one PUBLISH packet as the reader found it.
type publish struct {
	topic   string
	payload []byte // the whole payload, or its head when size is larger
	size    int    // the payload's full length
	qos     byte
	dup     bool
	retain  bool
	id      uint16 // packet identifier; 0 for QoS 0
}

// reader reads the packets a broker sends a subscriber. A PUBLISH that
// fits its buffer is parsed where it lies, costing two allocations (topic
// and payload); a larger one is read in pieces. With maxPayload set, a
// payload longer than that is kept as its first head bytes and the rest is
// read past, so a device can make the subscriber read a large message,
// never hold it.
type reader struct {
	br *bufio.Reader
	// maxPayload, when positive, is the longest payload kept whole; head
	// is how much of a longer one is kept.
	maxPayload, head int
}

// maxControlLength bounds the packets other than PUBLISH: CONNACK has 2
// bytes, a SUBACK for one filter 3, PINGRESP none.
const maxControlLength = 16

// next hands every PUBLISH it reads to deliver, in order, and returns the
// first other packet: its first byte and a copy of its body.
func (r *reader) next(deliver func(publish)) (first byte, body []byte, err error) {
	for {
		first, err = r.br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n, err := r.length()
		if err != nil {
			return 0, nil, err
		}
		if first>>4 != typePublish {
			if n > maxControlLength {
				return 0, nil, fmt.Errorf("%w: packet type %d of %d bytes", errMalformed, first>>4, n)
			}
			body = make([]byte, n)
			_, err = io.ReadFull(r.br, body)
			return first, body, noEOF(err)
		}
		m, err := r.publish(first, n)
		if err != nil {
			return 0, nil, err
		}
		deliver(m)
	}
}

// length reads a remaining length.
func (r *reader) length() (int, error) {
	n := 0
	for shift := 0; shift < 28; shift += 7 {
		b, err := r.br.ReadByte()
		if err != nil {
			return 0, noEOF(err)
		}
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w: remaining length longer than four bytes", errMalformed)
}

// publish reads the n bytes after a PUBLISH's fixed header.
func (r *reader) publish(first byte, n int) (publish, error) {
	m := publish{qos: (first >> 1) & 3, dup: first&8 != 0, retain: first&1 != 0}
	if m.qos > 1 {
		// Subscribed at QoS 1, the broker must send no higher (3.8.4).
		return m, fmt.Errorf("%w: PUBLISH of QoS %d on a QoS 1 subscription", errMalformed, m.qos)
	}
	if n <= r.br.Size() {
		b, err := r.br.Peek(n)
		if err != nil {
			return m, noEOF(err)
		}
		err = m.parse(b, r.maxPayload, r.head)
		_, _ = r.br.Discard(n) // Peek buffered them
		return m, err
	}
	// Larger than the buffer: the topic and identifier first, then the
	// payload whole, or its head and a read past the rest.
	var fixed [2]byte
	if _, err := io.ReadFull(r.br, fixed[:]); err != nil {
		return m, noEOF(err)
	}
	rest := n - 2
	topic := make([]byte, binary.BigEndian.Uint16(fixed[:]))
	if len(topic) > rest {
		return m, fmt.Errorf("%w: PUBLISH topic longer than the packet", errMalformed)
	}
	if _, err := io.ReadFull(r.br, topic); err != nil {
		return m, noEOF(err)
	}
	m.topic, rest = string(topic), rest-len(topic)
	if m.qos == 1 {
		if rest < 2 {
			return m, fmt.Errorf("%w: PUBLISH without room for its identifier", errMalformed)
		}
		if _, err := io.ReadFull(r.br, fixed[:]); err != nil {
			return m, noEOF(err)
		}
		if m.id, rest = binary.BigEndian.Uint16(fixed[:]), rest-2; m.id == 0 {
			return m, fmt.Errorf("%w: QoS 1 PUBLISH with identifier 0", errMalformed)
		}
	}
	m.size = rest
	keep := rest
	if r.maxPayload > 0 && rest > r.maxPayload {
		keep = min(max(r.head, 0), rest)
	}
	m.payload = make([]byte, keep)
	if _, err := io.ReadFull(r.br, m.payload); err != nil {
		return m, noEOF(err)
	}
	if _, err := r.br.Discard(rest - keep); err != nil {
		return m, noEOF(err)
	}
	return m, nil
}

// parse decodes a PUBLISH's variable header and payload from b, copying
// what it keeps out of the reader's buffer.
func (m *publish) parse(b []byte, maxPayload, head int) error {
	if len(b) < 2 {
		return fmt.Errorf("%w: PUBLISH without a topic", errMalformed)
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return fmt.Errorf("%w: PUBLISH topic longer than the packet", errMalformed)
	}
	m.topic = string(b[2 : 2+n])
	b = b[2+n:]
	if m.qos == 1 {
		if len(b) < 2 {
			return fmt.Errorf("%w: PUBLISH without room for its identifier", errMalformed)
		}
		if m.id = binary.BigEndian.Uint16(b); m.id == 0 {
			return fmt.Errorf("%w: QoS 1 PUBLISH with identifier 0", errMalformed)
		}
		b = b[2:]
	}
	m.size = len(b)
	if maxPayload > 0 && len(b) > maxPayload {
		b = b[:min(max(head, 0), len(b))]
	}
	m.payload = make([]byte, len(b))
	copy(m.payload, b)
	return nil
}

// noEOF reports a stream that ends inside a packet as such.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// pausingReader waits pause before a read that follows a short one, so
// that what the broker sends meanwhile comes in with that one read. A
// subscriber reading a steady stream of small messages as they arrive pays
// a read syscall and a netpoller wake-up for each; pausing a few
// milliseconds lets it take dozens at once for as much latency. A read
// that fills a quarter of the buffer does not pause the next: the stream
// already arrives in bulk.
type pausingReader struct {
	io.Reader
	pause time.Duration
	short bool // the last read filled less than a quarter of p
}

func (r *pausingReader) Read(p []byte) (int, error) {
	if r.short {
		time.Sleep(r.pause)
	}
	n, err := r.Reader.Read(p)
	r.short = n < len(p)/4
	return n, err
}
