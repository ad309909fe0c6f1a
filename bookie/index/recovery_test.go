package index

import (
	"math/rand/v2"
	"testing"

	"github.com/strata-mq/strata/internal/ids"
)

// journalOf makes the records of a journal cut into segments of per
// records, as a bookie serving rolling ledgers writes it: a few ledgers
// open at once, each closed (often fenced) after a while and later often
// deleted; rewrites of earlier entries (recovery adds, compaction); and
// entry ids far past the dense ones.
func journalOf(r *rand.Rand, n, per int) [][]Rec {
	var segs [][]Rec
	next := map[ids.LedgerID]ids.EntryID{}
	open := []ids.LedgerID{1, 2, 3}
	var closed []ids.LedgerID
	newest := ids.LedgerID(3)
	for i := range n {
		if i%per == 0 {
			segs = append(segs, nil)
		}
		id := uint32(len(segs))
		rec := Rec{Entry: ids.NoEntry, LAC: ids.NoEntry, Loc: Loc{File: id, Off: uint32(i%per) * 100, Len: 100}}
		k := r.IntN(len(open))
		l := open[k]
		switch x := r.IntN(1000); {
		case x < 3: // close it (fenced by a new owner half the time), open another
			if r.IntN(2) == 0 {
				rec.Op, rec.Ledger = OpFence, l
			} else {
				rec.Op, rec.Ledger, rec.Entry, rec.LAC = OpPut, l, next[l], next[l]-1
				next[l]++
			}
			closed = append(closed, l)
			newest++
			open[k] = newest
		case x < 6 && len(closed) > 0: // retention deletes an old one
			j := r.IntN(len(closed))
			rec.Op, rec.Ledger = OpDelete, closed[j]
			closed = append(closed[:j], closed[j+1:]...)
		case x < 100 && next[l] > 0:
			e := ids.EntryID(r.Int64N(int64(next[l])))
			rec.Op, rec.Ledger, rec.Entry, rec.LAC = OpPut, l, e, e-1
		case x < 120: // far beyond the ledger's dense ids
			e := next[l] + 1<<20 + ids.EntryID(r.Int64N(1<<40))
			rec.Op, rec.Ledger, rec.Entry, rec.LAC = OpPut, l, e, ids.NoEntry
		default:
			rec.Op, rec.Ledger, rec.Entry, rec.LAC = OpPut, l, next[l], next[l]-1
			next[l]++
		}
		segs[id-1] = append(segs[id-1], rec)
	}
	return segs
}

// Recovery applies every segment still on disk, from its index, to the
// ledger states of a checkpoint taken at some position, the segments before
// that position included. The result must be the full replay's, even with
// the segments a bookie may remove (before the checkpoint's position, no
// live entry) gone.
func TestCheckpointPlusSegmentIndexesRecoversAsAFullReplay(t *testing.T) {
	for seed := range uint64(8) {
		r := rand.New(rand.NewPCG(seed, 1))
		segs := journalOf(r, 60000, 1000)
		want := New()
		for _, s := range segs {
			for _, rec := range s {
				want.Apply(rec)
			}
		}
		// The checkpoint reflects every record before a point inside
		// segment at+1, and round-trips through its encoding.
		at := len(segs)/2 + r.IntN(len(segs)/2-1)
		live := New()
		for _, s := range segs[:at] {
			for _, rec := range s {
				live.Apply(rec)
			}
		}
		for _, rec := range segs[at][:r.IntN(len(segs[at]))] {
			live.Apply(rec)
		}
		cp, err := Decode(Encode(nil, 1, Position{File: uint32(at + 1)}, live))
		if err != nil {
			t.Fatalf("seed %d: checkpoint: %v", seed, err)
		}
		removed := 0
		for i, s := range segs {
			id := uint32(i + 1)
			if id <= uint32(at) && want.Live[id] == 0 { // as reclaim decides it, later than the checkpoint
				removed++
				continue
			}
			recs, err := DecodeSegment(EncodeSegment(id, s), id, 1<<20)
			if err != nil {
				t.Fatalf("seed %d: segment %d index: %v", seed, id, err)
			}
			for _, rec := range recs {
				cp.Table.Apply(rec)
			}
		}
		if !cp.Table.Equal(want) {
			t.Fatalf("seed %d: recovered table differs from a full replay (%d segments removed)", seed, removed)
		}
		if removed == 0 {
			t.Fatalf("seed %d: no segment was removable: the test does not cover removal", seed)
		}
	}
}
