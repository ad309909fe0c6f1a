package index

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/strata-mq/strata/internal/ids"
)

// Encoder builds a checkpoint a piece at a time, so that the caller can let
// go of the table's lock between pieces: the bookie's journal writer and
// syncer wait on that lock, and encoding a large index in one hold stalled
// every add for tens of milliseconds.
//
// A checkpoint built this way is fuzzy: each entry, and each ledger's
// flags, LAC and last entry, is captured at some moment after Position,
// not all at Position. Recovery is still exact, because it replays every
// record from Position on, and replaying a ledger's records onto any state
// that already reflects a prefix of them ends where the full replay ends:
// puts set an entry's location (the last one wins), LAC and last entry are
// maxima, fence is a flag, and a delete wipes the ledger and ignores every
// later put. The caller must not apply records from before Position while
// encoding (the bookie applies in journal order).
//
// Call Ledger for each ledger id the table held when Position was read;
// then Finish.
type Encoder struct {
	buf []byte
}

// chunkEntries is how many entry ids one Entries call looks at: tens of
// microseconds under the lock.
// A variable so that tests can make ledgers span many chunks.
var chunkEntries = 16384

// NewEncoder starts a checkpoint of ledgers ledgers at pos; entries is how
// many entries they hold (a hint that sizes the buffer once).
func NewEncoder(seq uint64, pos Position, ledgers, entries int) *Encoder {
	dst := make([]byte, 0, headerSize+ledgers*ledgerFixed+entries*entrySize+4)
	dst = append(dst, magic...)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint32(dst, pos.File)
	dst = binary.LittleEndian.AppendUint32(dst, pos.Off)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(ledgers))
	return &Encoder{buf: dst}
}

// LedgerEncoder encodes one ledger block.
type LedgerEncoder struct {
	e     *Encoder
	start int // offset of the block in e.buf
	n     uint32
	// next is the next dense slot to encode, end the dense length when
	// the block began: slots from end on were filled later (after the
	// checkpoint's position) or by ids moved out of sparse, which are
	// encoded already.
	next, end int
}

// Ledger starts the block of ledger id, whose state is led, and encodes its
// sparse entries. Call with the table's lock held, then Entries (each call
// under the lock) until it reports done, then End under the lock.
func (e *Encoder) Ledger(id ids.LedgerID, led *Ledger) *LedgerEncoder {
	le := &LedgerEncoder{e: e, start: len(e.buf), end: len(led.Entries.dense)}
	e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(id))
	e.buf = append(e.buf, make([]byte, ledgerFixed-8)...) // filled by End
	if !led.Deleted {
		for id, loc := range led.Entries.sparse {
			le.put(id, loc)
		}
	}
	return le
}

// Entries appends the next chunk of the ledger's dense entries and reports
// whether all of them are in. Needs the table's lock, held for this call.
func (le *LedgerEncoder) Entries(led *Ledger) (done bool) {
	if led.Deleted {
		return true // End drops what was appended
	}
	d := led.Entries.dense
	stop := min(le.end, len(d), le.next+chunkEntries)
	for ; le.next < stop; le.next++ {
		if loc := d[le.next]; loc.Len != 0 {
			le.put(ids.EntryID(le.next), loc)
		}
	}
	return le.next >= min(le.end, len(d))
}

func (le *LedgerEncoder) put(e ids.EntryID, loc Loc) {
	b := le.e.buf
	b = binary.LittleEndian.AppendUint64(b, uint64(e))
	b = binary.LittleEndian.AppendUint32(b, loc.File)
	b = binary.LittleEndian.AppendUint32(b, loc.Off)
	b = binary.LittleEndian.AppendUint32(b, loc.Len)
	le.e.buf = b
	le.n++
}

// End fills in the ledger's flags, LAC, last entry and entry count as they
// are now. Needs the table's lock.
func (le *LedgerEncoder) End(led *Ledger) {
	if led.Deleted {
		// Deleted meanwhile: a deleted ledger's block has no entries.
		le.e.buf = le.e.buf[:le.start+ledgerFixed]
		le.n = 0
	}
	fixed := le.e.buf[le.start+8 : le.start+ledgerFixed]
	var flags byte
	if led.Fenced {
		flags |= flagFenced
	}
	if led.Deleted {
		flags |= flagDeleted
	}
	fixed[0] = flags
	binary.LittleEndian.PutUint64(fixed[1:], uint64(led.LAC))
	binary.LittleEndian.PutUint64(fixed[9:], uint64(led.Last))
	binary.LittleEndian.PutUint32(fixed[17:], le.n)
}

// Finish appends the CRC and returns the checkpoint.
func (e *Encoder) Finish() []byte {
	return binary.LittleEndian.AppendUint32(e.buf, crc32.Checksum(e.buf, castagnoli))
}
