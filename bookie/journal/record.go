package journal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// Kind is the type of a record.
type Kind uint8

// Record kinds.
const (
	KindEntry  Kind = 0xE1
	KindFence  Kind = 0xF1
	KindDelete Kind = 0xD1
)

const (
	// HeaderSize is the size of a record without its payload.
	HeaderSize = 38
	// bodyFixed is the part of the length field that is not payload.
	bodyFixed = HeaderSize - 8
	// MaxPayload bounds the payload a decoder accepts (larger lengths are
	// malformed whatever the configuration).
	MaxPayload = 64 << 20

	flagRecovery = 1
	// flagSeeded: the CRC is seeded with the id of the segment the record
	// was written into (every record this version writes). Records without
	// it were written before segments were recycled, and are checked
	// without a seed.
	flagSeeded = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of Decode. ErrEnd and ErrShort are not damage by themselves: the
// scan decides what they mean from what follows.
var (
	// ErrEnd: a zero length field, the end of a preallocated segment's data.
	ErrEnd = errors.New("journal: end of data")
	// ErrShort: the buffer ends inside a record.
	ErrShort = errors.New("journal: record runs past the end of the segment")
	// ErrMalformed: impossible length or kind.
	ErrMalformed = errcode.New(errcode.Corruption, "journal: malformed record")
	// ErrChecksum: the CRC does not match the record's bytes.
	ErrChecksum = errcode.New(errcode.Corruption, "journal: record checksum mismatch")
)

// Record is one journal record. Payload aliases the decoded buffer.
type Record struct {
	Kind     Kind
	Recovery bool
	SyncMark uint32
	Ledger   ids.LedgerID
	Entry    ids.EntryID
	LAC      ids.EntryID
	Payload  []byte
}

// Size is the encoded size of r.
func (r *Record) Size() int { return HeaderSize + len(r.Payload) }

// Append encodes r, to be written into segment seg, at the end of dst.
func Append(dst []byte, r *Record, seg uint32) []byte {
	start := len(dst)
	var h [HeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(bodyFixed+len(r.Payload)))
	h[8] = byte(r.Kind)
	h[9] = flagSeeded
	if r.Recovery {
		h[9] |= flagRecovery
	}
	binary.LittleEndian.PutUint32(h[10:], r.SyncMark)
	binary.LittleEndian.PutUint64(h[14:], uint64(r.Ledger))
	binary.LittleEndian.PutUint64(h[22:], uint64(r.Entry))
	binary.LittleEndian.PutUint64(h[30:], uint64(r.LAC))
	dst = append(dst, h[:]...)
	dst = append(dst, r.Payload...)
	rec := dst[start:]
	binary.LittleEndian.PutUint32(rec[4:], checksum(rec, seg))
	return dst
}

// checksum is the CRC of encoded record rec, seeded with segment id seg
// when the record says so. The seed is what lets a segment file be used
// again without writing zeros over it first: a record left from the file's
// earlier use carries the CRC of its old segment id, so it fails under the
// new one like any other garbage past the end of the data.
func checksum(rec []byte, seg uint32) uint32 {
	c := uint32(0)
	if rec[9]&flagSeeded != 0 {
		var id [4]byte
		binary.LittleEndian.PutUint32(id[:], seg)
		c = crc32.Update(c, castagnoli, id[:])
	}
	c = crc32.Update(c, castagnoli, rec[0:4])
	return crc32.Update(c, castagnoli, rec[8:])
}

func validKind(k Kind) bool { return k == KindEntry || k == KindFence || k == KindDelete }

// Decode decodes the record at the start of b, read from segment seg, and
// returns it with its encoded size. It verifies the CRC.
func Decode(b []byte, seg uint32) (Record, int, error) {
	r, n, err := decodeHeader(b)
	if err != nil {
		return Record{}, 0, err
	}
	if binary.LittleEndian.Uint32(b[4:]) != checksum(b[:n], seg) {
		return Record{}, 0, ErrChecksum
	}
	r.Payload = b[HeaderSize:n:n]
	return r, n, nil
}

// Seeded reports whether the record at the start of b has a seeded CRC
// (whether it is valid is not checked). A segment whose first record is
// seeded holds only seeded records: each start of the bookie writes into a
// new segment, so a segment is written by one version.
func Seeded(b []byte) bool {
	if len(b) < HeaderSize {
		return false
	}
	_, _, err := decodeHeader(b)
	return (err == nil || err == ErrShort) && b[9]&flagSeeded != 0
}

// decodeHeader parses the fixed fields without checking the CRC.
func decodeHeader(b []byte) (Record, int, error) {
	if len(b) < 4 {
		return Record{}, 0, ErrShort
	}
	length := binary.LittleEndian.Uint32(b)
	if length == 0 {
		return Record{}, 0, ErrEnd
	}
	if length < bodyFixed || length > bodyFixed+MaxPayload {
		return Record{}, 0, ErrMalformed
	}
	n := 8 + int(length)
	if len(b) < n {
		return Record{}, 0, ErrShort
	}
	r := Record{
		Kind:     Kind(b[8]),
		Recovery: b[9]&flagRecovery != 0,
		SyncMark: binary.LittleEndian.Uint32(b[10:]),
		Ledger:   ids.LedgerID(binary.LittleEndian.Uint64(b[14:])),
		Entry:    ids.EntryID(binary.LittleEndian.Uint64(b[22:])),
		LAC:      ids.EntryID(binary.LittleEndian.Uint64(b[30:])),
	}
	if !validKind(r.Kind) || b[9]&^(flagRecovery|flagSeeded) != 0 || r.Ledger == 0 {
		return Record{}, 0, ErrMalformed
	}
	return r, n, nil
}
