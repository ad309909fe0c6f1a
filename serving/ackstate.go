package serving

import (
	"encoding/binary"
	"slices"
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

// span is an inclusive run of entry ids of one ledger.
type span struct{ first, last ids.EntryID }

// ackState is a subscription's entry-level acknowledgement state: every entry
// at or before markDelete is acknowledged, and so is every entry in the
// acked spans. Memory is O(holes), not O(entries). Acks of single messages
// of a batch are tracked by the subscription and reach ackState once the
// whole entry is acknowledged.
type ackState struct {
	markDelete ids.Position
	acked      map[ids.LedgerID][]span // sorted, disjoint, non-adjacent
	count      int64                   // entries in acked
}

func newAckState(markDelete ids.Position) *ackState {
	return &ackState{markDelete: markDelete, acked: make(map[ids.LedgerID][]span)}
}

// ack records entry p as acknowledged and moves markDelete over every
// acknowledged entry that follows it. The mark-delete position never moves
// past an entry that was not acknowledged.
func (a *ackState) ack(o order, p ids.Position) {
	if o.cmp(p, a.markDelete) <= 0 || a.contains(p) {
		return
	}
	a.insert(p)
	a.advance(o)
}

func (a *ackState) contains(p ids.Position) bool {
	ss := a.acked[p.Ledger]
	i := sort.Search(len(ss), func(i int) bool { return ss[i].last >= p.Entry })
	return i < len(ss) && ss[i].first <= p.Entry
}

// insert adds p (not yet present), merging with its neighbours.
func (a *ackState) insert(p ids.Position) {
	ss := a.acked[p.Ledger]
	e := p.Entry
	i := sort.Search(len(ss), func(i int) bool { return ss[i].last >= e })
	joinPrev := i > 0 && ss[i-1].last+1 == e
	joinNext := i < len(ss) && ss[i].first == e+1
	switch {
	case joinPrev && joinNext:
		ss[i-1].last = ss[i].last
		ss = slices.Delete(ss, i, i+1)
	case joinPrev:
		ss[i-1].last = e
	case joinNext:
		ss[i].first = e
	default:
		ss = slices.Insert(ss, i, span{e, e})
	}
	a.acked[p.Ledger] = ss
	a.count++
}

// advance moves markDelete over the acked spans that start right after it.
func (a *ackState) advance(o order) {
	for {
		n, ok := o.next(a.markDelete)
		if !ok {
			return
		}
		ss := a.acked[n.Ledger]
		if len(ss) == 0 || ss[0].first != n.Entry {
			return
		}
		a.markDelete = ids.Position{Ledger: n.Ledger, Entry: ss[0].last}
		a.count -= int64(ss[0].last - ss[0].first + 1)
		if len(ss) == 1 {
			delete(a.acked, n.Ledger)
		} else {
			a.acked[n.Ledger] = ss[1:]
		}
	}
}

func (a *ackState) isAcked(o order, p ids.Position) bool {
	return o.cmp(p, a.markDelete) <= 0 || a.contains(p)
}

// ackThrough acknowledges every entry up to and including target (TTL
// expiry): the mark-delete position moves to target when it is behind it.
func (a *ackState) ackThrough(o order, target ids.Position) {
	if o.cmp(target, a.markDelete) <= 0 {
		return
	}
	for l, ss := range a.acked {
		keep := ss[:0]
		for _, s := range ss {
			switch {
			case o.cmp(ids.Position{Ledger: l, Entry: s.last}, target) <= 0:
				a.count -= int64(s.last - s.first + 1)
				continue
			case o.cmp(ids.Position{Ledger: l, Entry: s.first}, target) <= 0:
				a.count -= int64(target.Entry - s.first + 1)
				s.first = target.Entry + 1
			}
			keep = append(keep, s)
		}
		if len(keep) == 0 {
			delete(a.acked, l)
		} else {
			a.acked[l] = keep
		}
	}
	a.markDelete = target
	a.advance(o)
}

// reset moves the mark-delete position (backwards or forwards) and forgets
// the individually acknowledged entries.
func (a *ackState) reset(markDelete ids.Position) {
	a.markDelete = markDelete
	a.acked = make(map[ids.LedgerID][]span)
	a.count = 0
}

// encodeRanges encodes the acked spans in log order, keeping the ones
// nearest markDelete within maxBytes: entries whose spans do not fit are
// redelivered after a takeover, never lost.
//
// Format: repeated (uvarint ledger, uvarint first entry, uvarint count).
func (a *ackState) encodeRanges(o order, maxBytes int) []byte {
	ledgers := make([]ids.LedgerID, 0, len(a.acked))
	for l := range a.acked {
		ledgers = append(ledgers, l)
	}
	sort.Slice(ledgers, func(i, j int) bool {
		return o.cmp(ids.Position{Ledger: ledgers[i]}, ids.Position{Ledger: ledgers[j]}) < 0
	})
	var out, rec []byte
	for _, l := range ledgers {
		for _, s := range a.acked[l] {
			rec = binary.AppendUvarint(rec[:0], uint64(l))
			rec = binary.AppendUvarint(rec, uint64(s.first))
			rec = binary.AppendUvarint(rec, uint64(s.last-s.first+1))
			if len(out)+len(rec) > maxBytes {
				return out
			}
			out = append(out, rec...)
		}
	}
	return out
}

// errBadRanges is returned for an acked-ranges encoding that does not parse.
var errBadRanges = errcode.New(errcode.Corruption, "serving: bad cursor acked ranges")

// decodeRanges rebuilds an ackState's spans (past markDelete) from
// encodeRanges' output.
func decodeRanges(markDelete ids.Position, b []byte) (*ackState, error) {
	a := newAckState(markDelete)
	for len(b) > 0 {
		var v [3]uint64
		var ok bool
		if b, ok = readUvarints(b, v[:]); !ok {
			return nil, errBadRanges
		}
		if v[1] > 1<<62 || v[2] == 0 || v[2] > 1<<62 || v[1]+v[2] > 1<<62 {
			return nil, errBadRanges
		}
		l, s := ids.LedgerID(v[0]), span{ids.EntryID(v[1]), ids.EntryID(v[1] + v[2] - 1)}
		ss := a.acked[l]
		if len(ss) > 0 && ss[len(ss)-1].last+1 >= s.first {
			return nil, errBadRanges // spans must ascend without overlap
		}
		a.acked[l] = append(ss, s)
		a.count += int64(v[2])
	}
	return a, nil
}

// readUvarints reads len(v) uvarints from the front of b into v and
// answers the rest of b; false when b runs out first or one overflows.
func readUvarints(b []byte, v []uint64) ([]byte, bool) {
	for k := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return b, false
		}
		v[k], b = x, b[n:]
	}
	return b, true
}
