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
	// flagSeeded: the CRC starts from the segment's Seed (the journal's
	// key and the id of the segment the record was written into), as on
	// every record this version writes. Records without it were written
	// before segments were recycled, and are checked without a seed.
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

// Seed is the CRC state the records of one segment start from (SeedOf).
type Seed uint32

// SeedOf is the seed of segment id in a journal whose key is key. The id
// is what lets a segment file be used again without writing zeros over it
// first: a record left from the file's earlier use carries the CRC of its
// old id, so it fails under the new one like any other garbage past the
// end of the data (CRC-32C is linear, and its polynomial divides no
// nonzero 32-bit difference of ids: a different id always changes the
// CRC). The key, random and kept beside the journal (the bookie's
// JOURNAL_KEY), is what keeps a record written by no bookie from passing:
// entries' payloads are anybody's bytes, and a producer could put records
// in them, seeded for the ids segments will have, for a recovery scan to
// find where it looks past the end of the data. Without the key, such a
// record passes with a chance of 2^-32.
func SeedOf(key uint64, id uint32) Seed {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:], key)
	binary.LittleEndian.PutUint32(b[8:], id)
	return Seed(crc32.Update(0, castagnoli, b[:]))
}

// Append encodes r, to be written into the segment whose seed is seed, at
// the end of dst.
func Append(dst []byte, r *Record, seed Seed) []byte {
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
	binary.LittleEndian.PutUint32(rec[4:], checksum(rec, seed))
	return dst
}

// checksum is the CRC of encoded record rec, starting from seed when the
// record says so (SeedOf).
func checksum(rec []byte, seed Seed) uint32 {
	c := uint32(0)
	if rec[9]&flagSeeded != 0 {
		c = uint32(seed)
	}
	c = crc32.Update(c, castagnoli, rec[0:4])
	return crc32.Update(c, castagnoli, rec[8:])
}

func validKind(k Kind) bool { return k == KindEntry || k == KindFence || k == KindDelete }

// Decode decodes the record at the start of b, read from the segment whose
// seed is seed, and returns it with its encoded size. It verifies the CRC.
func Decode(b []byte, seed Seed) (Record, int, error) {
	r, n, err := decodeHeader(b)
	if err != nil {
		return Record{}, 0, err
	}
	if binary.LittleEndian.Uint32(b[4:]) != checksum(b[:n], seed) {
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
