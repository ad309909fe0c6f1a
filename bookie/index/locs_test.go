package index

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/strata-mq/strata/internal/ids"
)

func TestLocsMatchAMapWhateverTheIds(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 2))
		var m Locs
		model := map[ids.EntryID]Loc{}
		next := ids.EntryID(0)
		for i := range 20000 {
			var e ids.EntryID
			switch x := r.IntN(100); {
			case x < 70: // appends, with striping gaps
				e = next
				next += ids.EntryID(1 + r.IntN(3))
			case x < 85 && next > 0: // rewrites (compaction, recovery)
				e = ids.EntryID(r.Int64N(int64(next)))
			case x < 95: // far ahead: sparse until appends reach it
				e = next + ids.EntryID(r.Int64N(50000))
			default: // hostile
				e = ids.EntryID(r.Int64N(1 << 50))
			}
			loc := Loc{File: 1, Off: uint32(i), Len: 40}
			old, replaced := m.Set(e, loc)
			mo, mok := model[e]
			if replaced != mok || (mok && old != mo) {
				t.Fatalf("seed %d: Set(%d) replaced %v %v, want %v %v", seed, e, replaced, old, mok, mo)
			}
			model[e] = loc
		}
		if m.Len() != len(model) {
			t.Fatalf("seed %d: Len %d, want %d", seed, m.Len(), len(model))
		}
		seen := 0
		prev := ids.EntryID(-1)
		inSparse := false
		for e, l := range m.All() {
			if model[e] != l {
				t.Fatalf("seed %d: All yields %d at %v, want %v", seed, e, l, model[e])
			}
			if e < ids.EntryID(len(m.dense)) != !inSparse {
				inSparse = true
				prev = -1
			}
			if e <= prev {
				t.Fatalf("seed %d: All not increasing within its part at %d", seed, e)
			}
			prev = e
			seen++
		}
		if seen != len(model) {
			t.Fatalf("seed %d: All yields %d entries, want %d", seed, seen, len(model))
		}
		for e := range m.sparse {
			if e >= 0 && e < ids.EntryID(len(m.dense)) {
				t.Fatalf("seed %d: id %d is in sparse though dense reaches it", seed, e)
			}
		}
		if int64(len(m.dense)) > 4*int64(m.Len()+1)+denseSlack {
			t.Fatalf("seed %d: dense has %d slots for %d entries", seed, len(m.dense), m.Len())
		}
	}
}

// TestAppendRangesListsThePresentEntriesAsAMapWould: whatever the ids
// (dense, sparse, striped), the ranges cover exactly the entries present
// in the range asked, are ascending, disjoint and never adjacent, and a
// bound on ranges stops the answer at the first entry left out, from
// which asking again gives the rest.
func TestAppendRangesListsThePresentEntriesAsAMapWould(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 3))
		var m Locs
		model := map[ids.EntryID]bool{}
		for e := ids.EntryID(0); e < 3000; e++ {
			if r.IntN(3) > 0 { // holes as a striped or a short copy leaves
				m.Set(e, Loc{File: 1, Len: 40})
				model[e] = true
			}
		}
		for range 50 { // sparse ids far ahead
			e := ids.EntryID(100000 + r.Int64N(1<<40))
			m.Set(e, Loc{File: 1, Len: 40})
			model[e] = true
		}
		for range 20 {
			first := ids.EntryID(r.Int64N(4000))
			last := first + ids.EntryID(r.Int64N(1<<41))
			if r.IntN(2) == 0 {
				last = first + ids.EntryID(r.Int64N(500))
			}
			maxRanges := 1 + r.IntN(300)
			var got []Range
			calls := 0
			for from := first; from <= last; calls++ {
				n := len(got)
				var next ids.EntryID
				got, next = m.AppendRanges(got, from, last, n+maxRanges)
				if next <= from && len(got) == n {
					t.Fatalf("seed %d: no progress from %d", seed, from)
				}
				from = next
			}
			var want []ids.EntryID
			for e := range model {
				if e >= first && e <= last {
					want = append(want, e)
				}
			}
			slices.Sort(want)
			var listed []ids.EntryID
			for i, rg := range got {
				if rg.Last < rg.First || (i > 0 && rg.First <= got[i-1].Last+1) {
					t.Fatalf("seed %d: ranges not ascending, disjoint and apart: %v", seed, got)
				}
				for e := rg.First; e <= rg.Last; e++ {
					listed = append(listed, e)
				}
			}
			if !slices.Equal(listed, want) {
				t.Fatalf("seed %d: %d..%d listed %d entries, want %d", seed, first, last, len(listed), len(want))
			}
		}
	}
}

// TestDamagedEntriesAreLeftOutOfListingsUntilACopyReplacesThem: an entry
// marked damaged at its location is still held (Get finds it, so reads
// answer a corruption) but neither AppendRanges nor AppendFrom lists it;
// a mark for a location the entry has left is refused; a new copy (Set)
// lists it again. AppendFrom, a batch at a time, walks the same entries
// as AppendRanges lists.
func TestDamagedEntriesAreLeftOutOfListingsUntilACopyReplacesThem(t *testing.T) {
	for seed := range uint64(10) {
		r := rand.New(rand.NewPCG(seed, 4))
		var m Locs
		model := map[ids.EntryID]bool{}
		var held []ids.EntryID
		set := func(e ids.EntryID, off uint32) {
			m.Set(e, Loc{File: 1, Off: off, Len: 40})
			model[e] = true
			held = append(held, e)
		}
		for e := ids.EntryID(0); e < 3000; e++ {
			if r.IntN(3) > 0 {
				set(e, 0)
			}
		}
		for range 30 {
			set(ids.EntryID(100000+r.Int64N(1<<40)), 0)
		}
		for _, e := range held {
			switch r.IntN(10) {
			case 0:
				if !m.MarkDamaged(e, Loc{File: 1, Len: 40}) || m.MarkDamaged(e, Loc{File: 1, Len: 40}) {
					t.Fatalf("seed %d: entry %d marked twice or not at all", seed, e)
				}
				model[e] = false
				if _, ok := m.Get(e); !ok || !m.Damaged(e) {
					t.Fatalf("seed %d: damaged entry %d no longer held", seed, e)
				}
				if r.IntN(2) == 0 { // copied back
					set(e, 1)
				}
			case 1:
				if m.MarkDamaged(e, Loc{File: 2, Len: 40}) {
					t.Fatalf("seed %d: entry %d marked at a location it does not live at", seed, e)
				}
			}
		}
		var want []ids.EntryID
		for e, ok := range model {
			if ok {
				want = append(want, e)
			}
		}
		slices.Sort(want)
		rs, _ := m.AppendRanges(nil, 0, 1<<42, 1<<20)
		var listed []ids.EntryID
		for _, rg := range rs {
			for e := rg.First; e <= rg.Last; e++ {
				listed = append(listed, e)
			}
		}
		if !slices.Equal(listed, want) {
			t.Fatalf("seed %d: AppendRanges listed %d entries, want %d", seed, len(listed), len(want))
		}
		var walked []ids.EntryID
		batch := 1 + r.IntN(100)
		for from := ids.EntryID(0); from >= 0; {
			var els []EntryLoc
			els, from = m.AppendFrom(nil, from, batch)
			if len(els) > batch || (from >= 0 && len(els) == 0) {
				t.Fatalf("seed %d: a batch of %d entries (max %d) going on from %d", seed, len(els), batch, from)
			}
			for _, el := range els {
				if loc, _ := m.Get(el.Entry); loc != el.Loc {
					t.Fatalf("seed %d: entry %d walked at %v, held at %v", seed, el.Entry, el.Loc, loc)
				}
				walked = append(walked, el.Entry)
			}
		}
		if !slices.Equal(walked, want) {
			t.Fatalf("seed %d: AppendFrom walked %d entries, want %d", seed, len(walked), len(want))
		}
	}
}
