package serving

import (
	"reflect"
	"testing"

	"github.com/strata-mq/strata/internal/ids"
)

// listOrder is a managed ledger as a list of (ledger, entries), in order.
type listOrder struct {
	ledgers []ids.LedgerID
	entries []int64
}

func (o listOrder) index(l ids.LedgerID) int {
	for i, x := range o.ledgers {
		if x == l {
			return i
		}
	}
	return -1
}

func (o listOrder) cmp(a, b ids.Position) int {
	ia, ib := o.index(a.Ledger), o.index(b.Ledger)
	switch {
	case ia != ib:
		return ia - ib
	case a.Entry < b.Entry:
		return -1
	case a.Entry > b.Entry:
		return 1
	}
	return 0
}

func (o listOrder) next(p ids.Position) (ids.Position, bool) {
	i := o.index(p.Ledger)
	if i >= 0 && int64(p.Entry)+1 < o.entries[i] {
		return ids.Position{Ledger: p.Ledger, Entry: p.Entry + 1}, true
	}
	for j := i + 1; j < len(o.ledgers); j++ {
		if o.entries[j] > 0 {
			return ids.Position{Ledger: o.ledgers[j], Entry: 0}, true
		}
	}
	return ids.Position{}, false
}

func pos(l, e int64) ids.Position {
	return ids.Position{Ledger: ids.LedgerID(l), Entry: ids.EntryID(e)}
}

func TestALongRunOfAcksBehindAHoleIsOneSpan(t *testing.T) {
	o := listOrder{ledgers: []ids.LedgerID{1}, entries: []int64{1_000_000}}
	a := newAckState(pos(1, -1))
	for e := int64(999_999); e >= 1; e-- {
		a.ack(o, pos(1, e))
	}
	if len(a.acked[1]) != 1 || a.count != 999_999 || a.markDelete != pos(1, -1) {
		t.Fatalf("spans %v count %d mark-delete %v", a.acked[1], a.count, a.markDelete)
	}
	a.ack(o, pos(1, 0))
	if a.markDelete != pos(1, 999_999) || a.count != 0 {
		t.Fatalf("mark-delete %v count %d after filling the hole", a.markDelete, a.count)
	}
}

func TestMarkDeleteNeverPassesAnUnackedEntry(t *testing.T) {
	// Ledger ids go backwards (9 then 4), and ledger 7 is empty.
	o := listOrder{ledgers: []ids.LedgerID{9, 7, 4}, entries: []int64{3, 0, 2}}
	for _, tc := range []struct {
		name string
		acks []ids.Position
		want ids.Position
	}{
		{"nothing acked", nil, pos(9, -1)},
		{"hole at the front", []ids.Position{pos(9, 1), pos(9, 2)}, pos(9, -1)},
		{"contiguous within a ledger", []ids.Position{pos(9, 0), pos(9, 1)}, pos(9, 1)},
		{"across an empty ledger to a smaller id", []ids.Position{pos(9, 0), pos(9, 1), pos(9, 2), pos(4, 0)}, pos(4, 0)},
		{"out of order acks", []ids.Position{pos(4, 1), pos(4, 0), pos(9, 2), pos(9, 1), pos(9, 0)}, pos(4, 1)},
		{"hole in the second ledger", []ids.Position{pos(9, 0), pos(9, 1), pos(9, 2), pos(4, 1)}, pos(9, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAckState(pos(9, -1))
			for _, p := range tc.acks {
				a.ack(o, p)
			}
			if a.markDelete != tc.want {
				t.Fatalf("mark-delete %v, want %v", a.markDelete, tc.want)
			}
			for _, p := range tc.acks {
				if !a.isAcked(o, p) {
					t.Fatalf("%v not acked", p)
				}
			}
		})
	}
}

func TestAckedRangesRoundTripWithinTheByteBound(t *testing.T) {
	o := listOrder{ledgers: []ids.LedgerID{9, 4}, entries: []int64{100, 100}}
	a := newAckState(pos(9, -1))
	for e := int64(10); e < 100; e += 2 { // 45 holes: 45 ranges
		a.ack(o, pos(9, e))
	}
	a.ack(o, pos(4, 5))
	a.ack(o, pos(4, 6))
	if a.count != 47 {
		t.Fatalf("count %d, want 47", a.count)
	}
	full := a.encodeRanges(o, 1<<20)
	got, err := decodeRanges(a.markDelete, full)
	if err != nil {
		t.Fatal(err)
	}
	if got.count != a.count {
		t.Fatalf("decoded %d acked entries, want %d", got.count, a.count)
	}
	for e := int64(0); e < 100; e++ {
		for _, l := range []int64{9, 4} {
			if got.contains(pos(l, e)) != a.contains(pos(l, e)) {
				t.Fatalf("%d:%d differs after decoding", l, e)
			}
		}
	}
	small := a.encodeRanges(o, 20)
	if len(small) > 20 {
		t.Fatalf("encoding of %d bytes over the bound of 20", len(small))
	}
	part, err := decodeRanges(a.markDelete, small)
	if err != nil {
		t.Fatal(err)
	}
	// The bound keeps the ranges nearest the mark-delete position.
	if !part.contains(pos(9, 10)) || part.contains(pos(4, 5)) {
		t.Fatalf("bounded encoding kept the wrong ranges: %v", part.acked)
	}
}

func FuzzDecodeRanges(f *testing.F) {
	o := listOrder{ledgers: []ids.LedgerID{1, 2}, entries: []int64{50, 50}}
	a := newAckState(pos(1, -1))
	a.ack(o, pos(1, 3))
	a.ack(o, pos(2, 7))
	f.Add(a.encodeRanges(o, 1024))
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeRanges(pos(1, -1), b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same state.
		again, err := decodeRanges(pos(1, -1), got.encodeRanges(o, 2*len(b)+16))
		if err != nil || again.count != got.count || !reflect.DeepEqual(again.acked, got.acked) {
			t.Fatalf("re-encoding changed the state: %v %v vs %v", err, again, got)
		}
	})
}

func TestAckThroughDropsSpansBehindTheTarget(t *testing.T) {
	o := listOrder{ledgers: []ids.LedgerID{9, 4}, entries: []int64{10, 10}}
	a := newAckState(pos(9, -1))
	for _, p := range []ids.Position{pos(9, 3), pos(9, 4), pos(9, 5), pos(4, 2), pos(4, 6)} {
		a.ack(o, p)
	}
	a.ackThrough(o, pos(9, 4))
	if a.markDelete != pos(9, 5) || a.count != 2 || a.contains(pos(9, 5)) {
		t.Fatalf("mark-delete %v count %d spans %v", a.markDelete, a.count, a.acked)
	}
	a.ackThrough(o, pos(9, 1)) // behind: no change
	if a.markDelete != pos(9, 5) {
		t.Fatalf("moved backwards to %v", a.markDelete)
	}
	a.ackThrough(o, pos(4, 1))
	if a.markDelete != pos(4, 2) || a.count != 1 {
		t.Fatalf("mark-delete %v count %d, want 4:2 and 1", a.markDelete, a.count)
	}
}
