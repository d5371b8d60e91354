package mqtt

import (
	"encoding/binary"
	"io"
)

// publish is one PUBLISH packet of QoS 0 or 1 as publishReader found it.
type publish struct {
	topic   string
	payload []byte // the whole payload, or its head when size is larger
	size    int    // the payload's full length
	qos     byte
	dup     bool
	retain  bool
	id      uint16 // packet identifier; 0 for QoS 0
}

// publishReader is the subscriber's fast path for received messages. It
// reads MQTT 3.1.1 packets from r into its buffer, hands every PUBLISH of
// QoS 0 or 1 that fits the buffer to deliver there and then, in the
// goroutine that called Read, and returns only the other packets' bytes
// (CONNACK, SUBACK, PINGRESP, a PUBLISH too large or of QoS 2, anything it
// cannot parse) to its reader, paho, which handles them as usual.
//
// paho hands a received PUBLISH through four goroutines and about a dozen
// allocations (its packet, a store key, a message, an ack closure, ...)
// before a handler sees it; here it costs two allocations (topic and
// payload, copied out of the reused buffer) and no goroutine switch. The
// messages it delivers never reach paho, so they are acknowledged with
// AckAll, not through paho.
//
// With maxPayload set, a PUBLISH too large for the buffer whose payload is
// longer than maxPayload is delivered with only its first head bytes and
// the rest is read past: a device can make the subscriber read a large
// message, never hold it (paho would allocate all of it).
type publishReader struct {
	r       io.Reader
	deliver func(publish)
	// maxPayload, when positive, is the longest payload delivered whole
	// from a packet larger than the buffer; head is how much of a longer
	// one is delivered.
	maxPayload, head int

	buf        []byte // unread bytes are buf[start:end]
	start, end int
	pass       int   // bytes of the current packet still to return to the reader
	skip       int   // bytes of a truncated packet still to read past
	err        error // the last read's error, returned once buffered bytes run out
}

// newPublishReader reads through a buffer of size bytes, which also bounds
// the PUBLISH packets it delivers itself.
func newPublishReader(r io.Reader, size int, deliver func(publish)) *publishReader {
	return &publishReader{r: r, deliver: deliver, buf: make([]byte, size)}
}

// Read returns the bytes of packets that are not delivered, reading and
// delivering as many PUBLISH packets as arrive until some are there.
func (pr *publishReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if pr.skip > 0 && pr.end > pr.start {
			n := min(pr.skip, pr.end-pr.start)
			pr.start += n
			pr.skip -= n
			continue
		}
		if pr.pass > 0 && pr.end > pr.start {
			n := copy(p[:min(len(p), pr.pass)], pr.buf[pr.start:pr.end])
			pr.start += n
			pr.pass -= n
			return n, nil
		}
		if pr.pass == 0 && pr.skip == 0 && pr.end > pr.start {
			size, complete := packetSize(pr.buf[pr.start:pr.end])
			switch {
			case !complete: // the fixed header is still arriving
			case size < 0: // malformed length: let paho fail on it
				pr.pass = int(^uint(0) >> 1)
				continue
			case pr.truncatable(size):
				m, verdict := pr.parseHead(size)
				switch verdict {
				case headDelivered:
					pr.skip = size
					pr.deliver(m)
					continue
				case headPassed:
					pr.pass = size
					continue
				}
				// headIncomplete: read on
			case !pr.deliverable(size):
				pr.pass = size
				continue
			case pr.end-pr.start >= size:
				if m, ok := parsePublish(pr.buf[pr.start : pr.start+size]); ok {
					pr.start += size
					pr.deliver(m)
				} else {
					pr.pass = size
				}
				continue
			}
		}
		if pr.err != nil {
			err := pr.err
			pr.err = nil
			return 0, err
		}
		if pr.start > 0 { // what is left is part of one packet: little to move
			pr.end = copy(pr.buf, pr.buf[pr.start:pr.end])
			pr.start = 0
		}
		n, err := pr.r.Read(pr.buf[pr.end:])
		pr.end += n
		pr.err = err
	}
}

// deliverable reports whether the packet at start, size bytes long, is a
// PUBLISH this reader delivers itself: QoS 0 or 1 and no larger than the
// buffer.
func (pr *publishReader) deliverable(size int) bool {
	h := pr.buf[pr.start]
	return h>>4 == 3 && (h>>1)&3 < 2 && size <= len(pr.buf)
}

// truncatable reports whether the packet at start, size bytes long, may be
// a PUBLISH to deliver truncated: QoS 0 or 1 and larger than the buffer.
func (pr *publishReader) truncatable(size int) bool {
	h := pr.buf[pr.start]
	return pr.maxPayload > 0 && h>>4 == 3 && (h>>1)&3 < 2 && size > len(pr.buf)
}

// What parseHead made of a packet's beginning.
const (
	headIncomplete = iota // read more
	headDelivered         // deliver the head and read past the rest
	headPassed            // not a payload to truncate: hand it to paho
)

// parseHead decodes the beginning of a PUBLISH packet of QoS 0 or 1, size
// bytes long, that starts at start: once its topic, identifier and first
// head payload bytes are buffered, and if its payload is longer than
// maxPayload, it returns the publish with a copy of those bytes. A
// payload no longer than maxPayload, a malformed packet, or a topic too
// long for the buffer to hold with the head goes to paho.
func (pr *publishReader) parseHead(size int) (m publish, verdict int) {
	b := pr.buf[pr.start:pr.end]
	hdr := 1
	for b[hdr]&0x80 != 0 { // packetSize checked the remaining length
		hdr++
	}
	hdr++
	if len(b) < hdr+2 {
		return m, pr.incomplete(hdr + 2)
	}
	topicEnd := hdr + 2 + int(binary.BigEndian.Uint16(b[hdr:]))
	m.qos, m.dup, m.retain = (b[0]>>1)&3, b[0]&8 != 0, b[0]&1 != 0
	payloadAt := topicEnd
	if m.qos == 1 {
		payloadAt += 2
	}
	m.size = size - payloadAt
	if m.size <= pr.maxPayload { // also a topic longer than the packet
		return m, headPassed
	}
	head := min(pr.head, m.size)
	if len(b) < payloadAt+head {
		return m, pr.incomplete(payloadAt + head)
	}
	if m.qos == 1 {
		if m.id = binary.BigEndian.Uint16(b[topicEnd:]); m.id == 0 {
			return m, headPassed
		}
	}
	m.topic = string(b[hdr+2 : topicEnd])
	m.payload = make([]byte, head)
	copy(m.payload, b[payloadAt:])
	return m, headDelivered
}

// incomplete is parseHead's verdict while fewer than need bytes of the
// packet are buffered: read on if they can be, else pass the packet.
func (pr *publishReader) incomplete(need int) int {
	if need > len(pr.buf) {
		return headPassed
	}
	return headIncomplete
}

// packetSize returns the size of the packet that b starts with (fixed
// header included), complete false while its fixed header is not all in b,
// or size -1 for a remaining length longer than four bytes.
func packetSize(b []byte) (size int, complete bool) {
	length, shift := 0, 0
	for i := 1; i < len(b); i++ {
		length |= int(b[i]&0x7f) << shift
		if b[i]&0x80 == 0 {
			return 1 + i + length, true
		}
		if shift += 7; shift > 21 {
			return -1, true
		}
	}
	return 0, false
}

// parsePublish decodes a whole PUBLISH packet of QoS 0 or 1, copying its
// topic and payload; ok is false when its fields do not fit its length or a
// QoS 1 packet has identifier 0.
func parsePublish(pkt []byte) (m publish, ok bool) {
	h := pkt[0]
	body := pkt[1:]
	for body[0]&0x80 != 0 { // skip the remaining length
		body = body[1:]
	}
	body = body[1:]
	if len(body) < 2 {
		return m, false
	}
	n := int(binary.BigEndian.Uint16(body))
	if len(body) < 2+n {
		return m, false
	}
	m.topic = string(body[2 : 2+n])
	body = body[2+n:]
	m.qos, m.dup, m.retain = (h>>1)&3, h&8 != 0, h&1 != 0
	if m.qos == 1 {
		if len(body) < 2 {
			return m, false
		}
		if m.id = binary.BigEndian.Uint16(body); m.id == 0 {
			return m, false
		}
		body = body[2:]
	}
	m.payload = make([]byte, len(body))
	copy(m.payload, body)
	m.size = len(body)
	return m, true
}
