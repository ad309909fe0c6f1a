package index

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/strata-mq/strata/internal/ids"
)

// op is one journal record as the table sees it.
type op struct {
	kind   byte // 'p' put, 'f' fence, 'd' delete
	ledger ids.LedgerID
	entry  ids.EntryID
	loc    Loc
}

func (o op) apply(t *Table) {
	switch o.kind {
	case 'p':
		t.Put(o.ledger, o.entry, o.entry-1, o.loc)
	case 'f':
		t.Fence(o.ledger)
	case 'd':
		t.Delete(o.ledger)
	}
}

// randomOps makes a journal of puts (appends, and rewrites of earlier
// entries as compaction does), fences and deletes over a few ledgers, some
// large enough to be encoded in several chunks and one with sparse ids.
func randomOps(r *rand.Rand, n int) []op {
	next := map[ids.LedgerID]ids.EntryID{}
	var out []op
	off := uint32(0)
	for range n {
		l := ids.LedgerID(1 + r.IntN(6))
		off += 100
		loc := Loc{File: 1 + off/(1<<20), Off: off % (1 << 20), Len: 100}
		switch x := r.IntN(1000); {
		case x < 2:
			out = append(out, op{kind: 'f', ledger: l})
		case x < 3 && l == 5 && r.IntN(20) == 0: // a delete is final: rare, one ledger
			out = append(out, op{kind: 'd', ledger: l})
		case x < 150 && next[l] > 0:
			out = append(out, op{kind: 'p', ledger: l, entry: ids.EntryID(r.Int64N(int64(next[l]))), loc: loc})
		case l == 6:
			out = append(out, op{kind: 'p', ledger: l, entry: ids.EntryID(r.Int64N(1 << 40)), loc: loc})
		default:
			out = append(out, op{kind: 'p', ledger: l, entry: next[l], loc: loc})
			next[l]++
		}
	}
	return out
}

func smallChunks(t *testing.T) {
	old := chunkEntries
	chunkEntries = 1024
	t.Cleanup(func() { chunkEntries = old })
}

func TestCheckpointEncodedWhileRecordsAreAppliedRecoversExactly(t *testing.T) {
	smallChunks(t)
	for seed := range uint64(8) {
		r := rand.New(rand.NewPCG(seed, 1))
		ops := randomOps(r, 60000)
		at := len(ops) / 2 // the checkpoint's position
		live := New()
		for _, o := range ops[:at] {
			o.apply(live)
		}
		// Encode the live table while the records after the position keep
		// being applied between chunks, as the bookie's syncer does.
		applied := at
		applySome := func() {
			for k := r.IntN(500); k > 0 && applied < len(ops); k-- {
				ops[applied].apply(live)
				applied++
			}
		}
		if n := live.Get(1).Entries.Len(); n < 3*chunkEntries {
			t.Fatalf("seed %d: ledger 1 has %d entries at the checkpoint: too few to be encoded in chunks", seed, n)
		}
		var ledgers []ids.LedgerID
		for id := range live.Ledgers {
			ledgers = append(ledgers, id)
		}
		enc := NewEncoder(7, Position{File: 1, Off: uint32(at)}, len(ledgers), live.Entries())
		for _, id := range ledgers {
			led := live.Get(id)
			le := enc.Ledger(id, led)
			for !le.Entries(led) {
				applySome()
			}
			applySome()
			le.End(led)
		}
		cp, err := Decode(enc.Finish())
		if err != nil {
			t.Fatalf("seed %d: decode: %v", seed, err)
		}
		for _, o := range ops[at:] { // recovery replays from the position
			o.apply(cp.Table)
		}
		want := New()
		for _, o := range ops {
			o.apply(want)
		}
		for id, l := range want.Ledgers {
			if g := cp.Table.Get(id); g == nil || !g.Equal(l) {
				t.Fatalf("seed %d: ledger %d after recovery differs from a full replay", seed, id)
			}
		}
		if !reflect.DeepEqual(cp.Table.Live, want.Live) || !reflect.DeepEqual(cp.Table.LiveBytes, want.LiveBytes) {
			t.Fatalf("seed %d: live counts differ: %v vs %v", seed, cp.Table.Live, want.Live)
		}
		if len(cp.Table.Ledgers) != len(want.Ledgers) {
			t.Fatalf("seed %d: %d ledgers, want %d", seed, len(cp.Table.Ledgers), len(want.Ledgers))
		}
	}
}

func TestLedgerDeletedWhileEncodedIsCheckpointedDeletedWithNoEntries(t *testing.T) {
	smallChunks(t)
	live := New()
	for e := range ids.EntryID(3 * chunkEntries) {
		live.Put(9, e, e-1, Loc{1, uint32(e) * 10, 10})
	}
	enc := NewEncoder(1, Position{1, 0}, 1, 0)
	led := live.Get(9)
	le := enc.Ledger(9, led)
	if le.Entries(led) {
		t.Fatal("a ledger of three chunks was encoded in one")
	}
	live.Delete(9)
	for !le.Entries(led) {
	}
	le.End(led)
	cp, err := Decode(enc.Finish())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got := cp.Table.Get(9); !got.Deleted || got.Entries.Len() != 0 {
		t.Fatalf("ledger 9 in the checkpoint: deleted %v with %d entries; want deleted and empty", got.Deleted, got.Entries.Len())
	}
}
