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

// Append encodes r at the end of dst.
func Append(dst []byte, r *Record) []byte {
	start := len(dst)
	var h [HeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(bodyFixed+len(r.Payload)))
	h[8] = byte(r.Kind)
	if r.Recovery {
		h[9] = flagRecovery
	}
	binary.LittleEndian.PutUint32(h[10:], r.SyncMark)
	binary.LittleEndian.PutUint64(h[14:], uint64(r.Ledger))
	binary.LittleEndian.PutUint64(h[22:], uint64(r.Entry))
	binary.LittleEndian.PutUint64(h[30:], uint64(r.LAC))
	dst = append(dst, h[:]...)
	dst = append(dst, r.Payload...)
	rec := dst[start:]
	binary.LittleEndian.PutUint32(rec[4:], checksum(rec))
	return dst
}

func checksum(rec []byte) uint32 {
	c := crc32.Update(0, castagnoli, rec[0:4])
	return crc32.Update(c, castagnoli, rec[8:])
}

func validKind(k Kind) bool { return k == KindEntry || k == KindFence || k == KindDelete }

// Decode decodes the record at the start of b and returns it with its
// encoded size. It verifies the CRC.
func Decode(b []byte) (Record, int, error) {
	r, n, err := decodeHeader(b)
	if err != nil {
		return Record{}, 0, err
	}
	if binary.LittleEndian.Uint32(b[4:]) != checksum(b[:n]) {
		return Record{}, 0, ErrChecksum
	}
	r.Payload = b[HeaderSize:n:n]
	return r, n, nil
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
	if !validKind(r.Kind) || b[9]&^flagRecovery != 0 || r.Ledger == 0 {
		return Record{}, 0, ErrMalformed
	}
	return r, n, nil
}
