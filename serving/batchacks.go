package serving

import (
	"encoding/binary"
	"math/bits"
	"slices"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// Acknowledgements of single messages of a producer's batch (one entry),
// kept across owners as Pulsar keeps them with
// acknowledgmentAtBatchIndexLevelEnabled. A pending entry tracks which of
// its messages were acknowledged; the cursor record carries that for the
// entries acknowledged in part (metadata.Cursor.BatchAcks), and the next
// owner marks those messages acknowledged again when it makes the entry
// pending, so that only the others are delivered.

// batchAck is the acknowledged messages of one entry acknowledged in part:
// acked[i] is message i's, for every message of the entry.
type batchAck struct {
	pos   ids.Position
	acked []bool
}

// encodeBatchAcks encodes bs (in log order, nearest the mark-delete
// position first), keeping the leading ones that fit within maxBytes: the
// messages of those that do not are delivered again after a takeover,
// never lost.
//
// Format: repeated (uvarint ledger, uvarint entry, uvarint messages n,
// then (n+7)/8 bytes whose bit i%8 of byte i/8, least significant first,
// is set iff message i is acknowledged; bits past n are zero, and at least
// one bit is set).
func encodeBatchAcks(bs []batchAck, maxBytes int) []byte {
	var out, rec []byte
	for _, b := range bs {
		rec = binary.AppendUvarint(rec[:0], uint64(b.pos.Ledger))
		rec = binary.AppendUvarint(rec, uint64(b.pos.Entry))
		rec = binary.AppendUvarint(rec, uint64(len(b.acked)))
		start := len(rec)
		rec = append(rec, make([]byte, (len(b.acked)+7)/8)...)
		for i, a := range b.acked {
			if a {
				rec[start+i/8] |= 1 << (i % 8)
			}
		}
		if len(out)+len(rec) > maxBytes {
			return out
		}
		out = append(out, rec...)
	}
	return out
}

// errBadBatchAcks is returned for a batch-acks encoding that does not
// parse.
var errBadBatchAcks = errcode.New(errcode.Corruption, "serving: bad cursor batch acks")

// decodeBatchAcks parses encodeBatchAcks' output, strictly: a record cut
// short, an entry id out of range, an entry of no messages, a bit set past
// the last message, a record with no bit set or an entry named twice (or
// not after the one before it in its ledger) is errBadBatchAcks.
func decodeBatchAcks(b []byte) ([]batchAck, error) {
	var out []batchAck
	last := make(map[ids.LedgerID]ids.EntryID)
	for len(b) > 0 {
		var v [3]uint64
		var ok bool
		if b, ok = readUvarints(b, v[:]); !ok {
			return nil, errBadBatchAcks
		}
		l, e, n := ids.LedgerID(v[0]), v[1], v[2]
		if e > 1<<62 || n == 0 || n > uint64(len(b))*8 {
			return nil, errBadBatchAcks
		}
		if prev, ok := last[l]; ok && ids.EntryID(e) <= prev {
			return nil, errBadBatchAcks
		}
		last[l] = ids.EntryID(e)
		set := b[:(n+7)/8]
		b = b[len(set):]
		acked, err := unpackBits(set, int(n))
		if err != nil {
			return nil, err
		}
		out = append(out, batchAck{pos: ids.Position{Ledger: l, Entry: ids.EntryID(e)}, acked: acked})
	}
	return out, nil
}

// unpackBits reads n bits of set (least significant first), which must
// have one set at least and none past n.
func unpackBits(set []byte, n int) ([]bool, error) {
	if pad := n % 8; pad != 0 && set[len(set)-1]>>pad != 0 {
		return nil, errBadBatchAcks
	}
	acked := make([]bool, n)
	ones := 0
	for i, x := range set {
		ones += bits.OnesCount8(x)
		for j := 0; x != 0; j, x = j+1, x>>1 {
			acked[i*8+j] = x&1 == 1
		}
	}
	if ones == 0 {
		return nil, errBadBatchAcks
	}
	return acked, nil
}

// loadBatchAcksLocked keeps the batch acks of a loaded cursor for the
// entries not acknowledged whole: the bits of an entry at or before the
// mark-delete position or in the acked ranges say nothing more.
func (s *subscription) loadBatchAcksLocked(bs []batchAck) {
	o := s.t.orderLocked()
	s.batchAcks = make(map[ids.Position][]bool, len(bs))
	for _, b := range bs {
		if !s.acks.isAcked(o, b.pos) {
			s.batchAcks[b.pos] = b.acked
		}
	}
}

// newPendingEntry is e with none of its messages acknowledged yet.
func newPendingEntry(e *cachedEntry) *pendingEntry {
	return &pendingEntry{e: e, acked: make([]bool, len(e.batch.Messages))}
}

// addPendingLocked makes pe pending, first marking acknowledged the
// messages the loaded cursor recorded so (batchAcks). It answers false,
// and pe is not pending, when pe's messages are then all acknowledged
// (by those, or by acks applied before, earlyacks.go): the entry is then
// acknowledged whole, and nothing of it is delivered.
func (s *subscription) addPendingLocked(pe *pendingEntry) bool {
	pos := pe.e.pos
	// Bits for another number of messages are not this entry's to trust
	// (a compacted view may hold fewer): its messages come again instead.
	if stored := s.batchAcks[pos]; len(stored) > 0 && len(stored) == len(pe.acked) {
		for i, a := range stored {
			if a && !pe.acked[i] {
				pe.acked[i] = true
				pe.nAcked++
			}
		}
	}
	if pe.nAcked > 0 && pe.nAcked == len(pe.acked) {
		s.entryAckedLocked(pos, pe)
		s.dirty = true
		return false
	}
	s.pending[pos] = pe
	return true
}

// partialAcksLocked lists, in log order, the entries acknowledged in part:
// the pending ones, and those whose loaded bits no pending entry has taken
// over yet (not read since the load, or held back until their delivery
// time). It forgets the loaded bits of entries acknowledged whole since
// (expired, or passed over by a compacted read).
func (s *subscription) partialAcksLocked() []batchAck {
	o := s.t.orderLocked()
	var out []batchAck
	for pos, pe := range s.pending {
		if pe.nAcked > 0 && !s.acks.isAcked(o, pos) {
			out = append(out, batchAck{pos: pos, acked: pe.acked})
		}
	}
	for pos, acked := range s.batchAcks {
		switch {
		case s.acks.isAcked(o, pos):
			delete(s.batchAcks, pos)
		case s.pending[pos] == nil:
			out = append(out, batchAck{pos: pos, acked: acked})
		}
	}
	slices.SortFunc(out, func(a, b batchAck) int { return o.cmp(a.pos, b.pos) })
	return out
}
