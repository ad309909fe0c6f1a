package serving

import (
	"encoding/binary"
	"sort"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// order is the log order of a topic's positions: ledger ids are not
// monotonic across owners (each node allocates from its own reserved range),
// so positions are compared by the ledger's place in the managed ledger.
type order interface {
	cmp(a, b ids.Position) int
	next(p ids.Position) (ids.Position, bool)
}

// ackState is a subscription's entry-level acknowledgement state: every entry
// at or before markDelete is acknowledged, and so is every entry in acked.
// Acks of single messages of a batch are tracked by the subscription and
// reach ackState once the whole entry is acknowledged.
type ackState struct {
	markDelete ids.Position
	acked      map[ids.Position]struct{}
}

func newAckState(markDelete ids.Position) *ackState {
	return &ackState{markDelete: markDelete, acked: make(map[ids.Position]struct{})}
}

// ack records entry p as acknowledged and moves markDelete over every
// acknowledged entry that follows it. The mark-delete position never moves
// past an entry that was not acknowledged.
func (a *ackState) ack(o order, p ids.Position) {
	if o.cmp(p, a.markDelete) <= 0 {
		return
	}
	a.acked[p] = struct{}{}
	a.advance(o)
}

func (a *ackState) advance(o order) {
	for {
		n, ok := o.next(a.markDelete)
		if !ok {
			return
		}
		if _, done := a.acked[n]; !done {
			return
		}
		delete(a.acked, n)
		a.markDelete = n
	}
}

func (a *ackState) isAcked(o order, p ids.Position) bool {
	if o.cmp(p, a.markDelete) <= 0 {
		return true
	}
	_, ok := a.acked[p]
	return ok
}

// reset moves the mark-delete position (backwards or forwards) and forgets
// the individually acknowledged entries.
func (a *ackState) reset(markDelete ids.Position) {
	a.markDelete = markDelete
	a.acked = make(map[ids.Position]struct{})
}

// encodeRanges encodes the acknowledged entries past markDelete as ranges, in
// log order, keeping the ones nearest markDelete within maxBytes: entries
// whose ranges do not fit are redelivered after a takeover, never lost.
//
// Format: repeated (uvarint ledger, uvarint first entry, uvarint count).
func (a *ackState) encodeRanges(o order, maxBytes int) []byte {
	ps := make([]ids.Position, 0, len(a.acked))
	for p := range a.acked {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return o.cmp(ps[i], ps[j]) < 0 })
	var out, rec []byte
	for i := 0; i < len(ps); {
		j := i + 1
		for j < len(ps) && ps[j].Ledger == ps[i].Ledger && ps[j].Entry == ps[j-1].Entry+1 {
			j++
		}
		rec = binary.AppendUvarint(rec[:0], uint64(ps[i].Ledger))
		rec = binary.AppendUvarint(rec, uint64(ps[i].Entry))
		rec = binary.AppendUvarint(rec, uint64(j-i))
		if len(out)+len(rec) > maxBytes {
			break
		}
		out = append(out, rec...)
		i = j
	}
	return out
}

// errBadRanges is returned for an acked-ranges encoding that does not parse.
var errBadRanges = errcode.New(errcode.Corruption, "serving: bad cursor acked ranges")

// maxDecodedAcks bounds what one stored cursor can expand to in memory.
const maxDecodedAcks = 1 << 20

func decodeRanges(b []byte) (map[ids.Position]struct{}, error) {
	acked := make(map[ids.Position]struct{})
	for len(b) > 0 {
		var v [3]uint64
		for k := range v {
			x, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, errBadRanges
			}
			v[k], b = x, b[n:]
		}
		if v[2] > maxDecodedAcks || len(acked)+int(v[2]) > maxDecodedAcks || v[1] > 1<<62 {
			return nil, errBadRanges
		}
		for e := uint64(0); e < v[2]; e++ {
			acked[ids.Position{Ledger: ids.LedgerID(v[0]), Entry: ids.EntryID(v[1] + e)}] = struct{}{}
		}
	}
	return acked, nil
}
