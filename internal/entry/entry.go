package entry

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"

	"github.com/strata-mq/strata/internal/errcode"
)

const (
	magic0, magic1 = 'S', 'E'
	version        = 1
	headerLen      = 4
	crcLen         = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is returned for a payload that fails its checksum or does not
// parse.
var ErrCorrupt = errcode.New(errcode.Corruption, "entry: corrupt payload")

// Message is one message of a batch.
type Message struct {
	SequenceID uint64
	Key        string
	Properties map[string]string
	Payload    []byte
	// EventTime is unix nanoseconds set by the producer, 0 when unset.
	EventTime int64
}

// Batch is one producer batch: what an entry holds.
type Batch struct {
	ProducerName string
	// PublishTime is unix nanoseconds assigned by the serving node.
	PublishTime int64
	Messages    []Message
}

// Size returns the exact encoded size of b.
func Size(b *Batch) int {
	n := headerLen + uvarintLen(uint64(len(b.ProducerName))) + len(b.ProducerName) +
		varintLen(b.PublishTime) + uvarintLen(uint64(len(b.Messages))) + crcLen
	for i := range b.Messages {
		n += MessageSize(&b.Messages[i])
	}
	return n
}

// MessageSize is the encoded size of m (what AppendMessage appends).
func MessageSize(m *Message) int {
	n := uvarintLen(m.SequenceID) + varintLen(m.EventTime) +
		uvarintLen(uint64(len(m.Key))) + len(m.Key) +
		uvarintLen(uint64(len(m.Properties))) +
		uvarintLen(uint64(len(m.Payload))) + len(m.Payload)
	for k, v := range m.Properties {
		n += uvarintLen(uint64(len(k))) + len(k) + uvarintLen(uint64(len(v))) + len(v)
	}
	return n
}

// Encode returns the encoding of b.
func Encode(b *Batch) []byte { return AppendEncode(make([]byte, 0, Size(b)), b) }

// AppendEncode appends the encoding of b to dst.
func AppendEncode(dst []byte, b *Batch) []byte {
	start := len(dst)
	dst = appendHeader(dst, CompressionNone, b.ProducerName, b.PublishTime, len(b.Messages))
	for i := range b.Messages {
		dst = AppendMessage(dst, &b.Messages[i])
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// AppendMessage appends the encoding of one message of a batch (the
// per-message part of the format) to dst. A producer encodes its batch with
// it, and AppendEntry makes the entry without touching the messages again.
func AppendMessage(dst []byte, m *Message) []byte {
	dst = binary.AppendUvarint(dst, m.SequenceID)
	dst = binary.AppendVarint(dst, m.EventTime)
	dst = appendString(dst, m.Key)
	dst = binary.AppendUvarint(dst, uint64(len(m.Properties)))
	// Sorted keys make the encoding deterministic, so an entry rebuilt
	// from an offloaded segment has the bytes it was written with.
	if len(m.Properties) > 0 { // most messages have none: skip the sort's allocations
		for _, k := range slices.Sorted(maps.Keys(m.Properties)) {
			dst = appendString(dst, k)
			dst = appendString(dst, m.Properties[k])
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Payload)))
	return append(dst, m.Payload...)
}

// EntrySize is the size of the entry AppendEntry makes.
func EntrySize(producer string, publishTime int64, count, messageBytes int) int {
	return headerLen + uvarintLen(uint64(len(producer))) + len(producer) + varintLen(publishTime) +
		uvarintLen(uint64(count)) + messageBytes + crcLen
}

// AppendEntry appends an entry of count messages already encoded with
// AppendMessage (msgs, as DecodeMessages accepted them) to dst: the same
// bytes as AppendEncode of the decoded batch.
func AppendEntry(dst []byte, producer string, publishTime int64, count int, msgs []byte) []byte {
	start := len(dst)
	dst = appendHeader(dst, CompressionNone, producer, publishTime, count)
	dst = append(dst, msgs...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// CompressedEntrySize is the size of the entry AppendCompressedEntry makes.
func CompressedEntrySize(producer string, publishTime int64, count, size, compressedBytes int) int {
	return EntrySize(producer, publishTime, count, compressedBytes) + uvarintLen(uint64(size))
}

// AppendCompressedEntry appends an entry of count messages whose
// AppendMessage encodings, size bytes in all, are compressed with c (as
// Compress returned them) to dst. The messages stay compressed in the
// ledger; Decode decompresses them.
func AppendCompressedEntry(dst []byte, producer string, publishTime int64, count int, c Compression, size int, compressed []byte) []byte {
	start := len(dst)
	dst = appendHeader(dst, c, producer, publishTime, count)
	dst = binary.AppendUvarint(dst, uint64(size))
	dst = append(dst, compressed...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func appendHeader(dst []byte, c Compression, producer string, publishTime int64, count int) []byte {
	dst = append(dst, magic0, magic1, version, byte(c))
	dst = appendString(dst, producer)
	dst = binary.AppendVarint(dst, publishTime)
	return binary.AppendUvarint(dst, uint64(count))
}

// DecodeMessages parses count messages encoded with AppendMessage, which
// must fill p exactly, for a producer's batch that is not trusted: besides
// the lengths it checks that p is exactly what AppendMessage writes
// (property keys strictly increasing, shortest varints), so the entry made
// of p has the bytes AppendEncode gives, which an entry rebuilt from the
// object store must match.
// The messages' byte slices alias p. Errors are ErrCorrupt.
func DecodeMessages(p []byte, count int) ([]Message, error) {
	// Every message takes at least 5 bytes, which bounds the allocation.
	if count <= 0 || count > len(p)/5+1 {
		return nil, corrupt("message count %d out of range", count)
	}
	d := decoder{buf: p, strict: true}
	ms := make([]Message, count)
	for i := range ms {
		d.message(&ms[i])
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.buf) != 0 {
		return nil, corrupt("%d trailing bytes", len(d.buf))
	}
	return ms, nil
}

// Decode parses p. The returned batch's byte slices alias p.
func Decode(p []byte) (*Batch, error) {
	if len(p) < headerLen+crcLen {
		return nil, corrupt("short payload: %d bytes", len(p))
	}
	body, sum := p[:len(p)-crcLen], binary.LittleEndian.Uint32(p[len(p)-crcLen:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, corrupt("checksum mismatch")
	}
	if body[0] != magic0 || body[1] != magic1 {
		return nil, corrupt("bad magic")
	}
	if body[2] != version {
		return nil, corrupt("unknown version %d", body[2])
	}
	if body[3]&^compressionMask != 0 {
		return nil, corrupt("unknown flags %#x", body[3])
	}
	d := decoder{buf: body[headerLen:]}
	b := &Batch{ProducerName: d.string(), PublishTime: d.varint()}
	count := d.uvarint()
	if c := Compression(body[3] & compressionMask); c != CompressionNone && d.err == nil {
		size := d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		if size > MaxUncompressedBytes {
			return nil, corrupt("uncompressed size %d over the limit of %d", size, MaxUncompressedBytes)
		}
		raw, err := Decompress(c, d.buf, int(size))
		if err != nil {
			return nil, err
		}
		d.buf = raw
	}
	// Every message takes at least 5 bytes, which bounds the allocation.
	if d.err == nil && (count == 0 || count > uint64(len(d.buf))/5+1) {
		return nil, corrupt("message count %d out of range", count)
	}
	if d.err != nil {
		return nil, d.err
	}
	b.Messages = make([]Message, count)
	for i := range b.Messages {
		d.message(&b.Messages[i])
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.buf) != 0 {
		return nil, corrupt("%d trailing bytes", len(d.buf))
	}
	return b, nil
}

type decoder struct {
	buf []byte
	err error
	// strict: the bytes must be what AppendMessage writes: property keys
	// strictly increasing, every varint in its shortest form.
	strict bool
}

func (d *decoder) message(m *Message) {
	m.SequenceID = d.uvarint()
	m.EventTime = d.varint()
	m.Key = d.string()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.buf))/2 {
		d.err = corrupt("property count %d out of range", n)
	}
	if d.err == nil && n > 0 {
		m.Properties = make(map[string]string, n)
		prev := ""
		for j := uint64(0); j < n && d.err == nil; j++ {
			k := d.string()
			if d.strict && j > 0 && k <= prev {
				d.err = corrupt("property keys not in increasing order")
			}
			m.Properties[k], prev = d.string(), k
		}
	}
	m.Payload = d.bytes()
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 || (d.strict && n != uvarintLen(v)) {
		d.err = corrupt("bad varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 || (d.strict && n != varintLen(v)) {
		d.err = corrupt("bad varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.err = corrupt("length %d beyond the %d bytes left", n, len(d.buf))
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) string() string { return string(d.bytes()) }

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}
