package cursor

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/strata-mq/strata/internal/ids"
)

// ledgers models a managed ledger: ledger i has entries 0..last[i].
type ledgers struct {
	ids  []ids.LedgerID
	last []ids.EntryID
}

func (m ledgers) next(p ids.Position) (ids.Position, bool) {
	for i, l := range m.ids {
		switch {
		case l < p.Ledger:
			continue
		case l == p.Ledger && p.Entry < m.last[i]:
			return ids.Position{Ledger: l, Entry: p.Entry + 1}, true
		case l > p.Ledger && m.last[i] >= 0:
			return ids.Position{Ledger: l, Entry: 0}, true
		}
	}
	return ids.Position{}, false
}

func TestMarkDeleteAdvancesOnlyOverContiguousAcks(t *testing.T) {
	m := ledgers{ids: []ids.LedgerID{3, 5}, last: []ids.EntryID{2, 4}}
	c := New(ids.Position{Ledger: 3, Entry: -1})
	c.AckEntry(ids.Position{Ledger: 3, Entry: 1})
	c.AckEntry(ids.Position{Ledger: 5, Entry: 0})
	if c.Advance(m.next) {
		t.Fatalf("moved past unacked 3:0 to %v", c.MarkDelete())
	}
	c.AckEntry(ids.Position{Ledger: 3, Entry: 0})
	c.Advance(m.next)
	if got := c.MarkDelete(); got != (ids.Position{Ledger: 3, Entry: 1}) {
		t.Fatalf("mark-delete %v, want 3:1", got)
	}
	c.AckEntry(ids.Position{Ledger: 3, Entry: 2})
	c.Advance(m.next)
	if got := c.MarkDelete(); got != (ids.Position{Ledger: 5, Entry: 0}) {
		t.Fatalf("mark-delete %v, want 5:0 (across the ledger boundary)", got)
	}
}

func TestPartialBatchAckDoesNotCompleteEntry(t *testing.T) {
	m := ledgers{ids: []ids.LedgerID{1}, last: []ids.EntryID{0}}
	c := New(ids.Position{Ledger: 1, Entry: -1})
	for i := int32(0); i < 2; i++ {
		if c.AckMessage(ids.MessageID{Ledger: 1, Entry: 0, Batch: i}, 3) {
			t.Fatalf("entry complete after %d of 3 messages", i+1)
		}
	}
	if c.Advance(m.next) {
		t.Fatal("mark-delete moved past a partly acked entry")
	}
	if !c.IsAcked(ids.MessageID{Ledger: 1, Entry: 0, Batch: 1}) || c.IsAcked(ids.MessageID{Ledger: 1, Entry: 0, Batch: 2}) {
		t.Fatal("IsAcked wrong for partial entry")
	}
	if !c.AckMessage(ids.MessageID{Ledger: 1, Entry: 0, Batch: 2}, 3) || !c.Advance(m.next) {
		t.Fatal("entry not completed by its last message")
	}
}

func TestCumulativeAckStopsInsideBatch(t *testing.T) {
	m := ledgers{ids: []ids.LedgerID{1}, last: []ids.EntryID{5}}
	c := New(ids.Position{Ledger: 1, Entry: -1})
	c.AckCumulative(ids.MessageID{Ledger: 1, Entry: 3, Batch: 0}, 2, m.next)
	if got := c.MarkDelete(); got != (ids.Position{Ledger: 1, Entry: 2}) {
		t.Fatalf("mark-delete %v, want 1:2", got)
	}
	if c.IsAcked(ids.MessageID{Ledger: 1, Entry: 3, Batch: 1}) {
		t.Fatal("message after the cumulative ack is acked")
	}
}

// TestRandomAcksNeverMovePastUnacked checks the invariant over random ack
// orders, with an encode/decode round trip in between.
func TestRandomAcksNeverMovePastUnacked(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 1))
		m := ledgers{ids: []ids.LedgerID{2, 4, 9}, last: []ids.EntryID{9, -1, 14}}
		var all []ids.Position
		for p, ok := m.next(ids.Position{Ledger: 2, Entry: -1}); ok; p, ok = m.next(p) {
			all = append(all, p)
		}
		acked := map[ids.Position]bool{}
		c := New(ids.Position{Ledger: 2, Entry: -1})
		for _, i := range r.Perm(len(all))[:r.IntN(len(all))] {
			c.AckEntry(all[i])
			acked[all[i]] = true
			if r.IntN(4) == 0 {
				data, _ := c.Encode()
				var err error
				if c, err = Decode(c.MarkDelete(), data); err != nil {
					t.Fatalf("seed %d: decode: %v", seed, err)
				}
			}
			c.Advance(m.next)
			for _, p := range all {
				if !c.MarkDelete().Less(p) && !acked[p] {
					t.Fatalf("seed %d: mark-delete %v past unacked %v", seed, c.MarkDelete(), p)
				}
				if acked[p] != c.IsEntryAcked(p) {
					t.Fatalf("seed %d: IsEntryAcked(%v) = %v", seed, p, !acked[p])
				}
			}
		}
	}
}

func TestEncodeIsBoundedAndTruncationOnlyForgetsAcks(t *testing.T) {
	c := New(ids.Position{Ledger: 1, Entry: -1})
	c.SetMaxRanges(10)
	for e := ids.EntryID(1); e < 100; e += 2 { // 49 separate ranges
		c.AckEntry(ids.Position{Ledger: 1, Entry: e})
	}
	data, truncated := c.Encode()
	if !truncated {
		t.Fatal("expected truncation")
	}
	d, err := Decode(c.MarkDelete(), data)
	if err != nil {
		t.Fatal(err)
	}
	if d.Ranges() > 10 {
		t.Fatalf("decoded %d ranges, bound 10", d.Ranges())
	}
	for e := ids.EntryID(0); e < 100; e++ {
		p := ids.Position{Ledger: 1, Entry: e}
		if d.IsEntryAcked(p) && !c.IsEntryAcked(p) {
			t.Fatalf("decoded state acks %v that was never acked", p)
		}
	}
}

func TestDecodeRejectsGarbageWithTypedError(t *testing.T) {
	for _, b := range [][]byte{{2}, {1, 0xff}, {1, 1, 1, 1, 10, 0, 0, 0}, {1, 0, 1, 1, 0, 8, 1}} {
		if _, err := Decode(ids.Position{}, b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Decode(%v) = %v, want ErrCorrupt", b, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	c := New(ids.Position{Ledger: 1, Entry: -1})
	c.AckEntry(ids.Position{Ledger: 1, Entry: 4})
	c.AckMessage(ids.MessageID{Ledger: 2, Entry: 1, Batch: 3}, 9)
	data, _ := c.Encode()
	f.Add(data)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Decode(ids.Position{Ledger: 1, Entry: -1}, b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, _ := d.Encode()
		if _, err := Decode(d.MarkDelete(), again); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
	})
}
