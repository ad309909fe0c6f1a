package index

import (
	"iter"
	"maps"
	"slices"

	"github.com/strata-mq/strata/internal/ids"
)

// Locs maps a ledger's entry ids to their locations. Entry ids are dense
// from 0 (a bookie of an ensemble holds Qw of every E of them), so most live
// in a slice indexed by id: 12 bytes an entry and lookups without hashing. Ids the slice would have
// to grow too sparse to reach (a hostile or wildly striped writer) go to a
// map instead. The zero value is empty and ready.
type Locs struct {
	// dense[e] is entry e's location; a zero Len means absent (every
	// record is longer than its header).
	dense []Loc
	// inDense counts the entries present in dense.
	inDense int
	// sparse holds the ids outside dense; never one below len(dense).
	sparse map[ids.EntryID]Loc
	// damaged holds the entries whose record, at their present location,
	// failed its checksum when read (MarkDamaged). Rare, so a map that
	// stays nil costs a ledger 8 bytes; a new location clears the mark.
	damaged map[ids.EntryID]struct{}
}

// denseSlack is how far past the densest growth dense may reach: it may
// grow to id e when e < 4*(entries held+1) + denseSlack, so it stays at
// least a quarter full beyond its first denseSlack slots.
const denseSlack = 4096

// Len is the number of entries.
func (m *Locs) Len() int { return m.inDense + len(m.sparse) }

// Get returns entry e's location.
func (m *Locs) Get(e ids.EntryID) (Loc, bool) {
	if e >= 0 && e < ids.EntryID(len(m.dense)) {
		l := m.dense[e]
		return l, l.Len != 0
	}
	l, ok := m.sparse[e]
	return l, ok
}

// Set records entry e at loc (loc.Len must not be 0) and returns the
// location it replaces, if any.
func (m *Locs) Set(e ids.EntryID, loc Loc) (old Loc, replaced bool) {
	delete(m.damaged, e)
	if e >= 0 && e >= ids.EntryID(len(m.dense)) && int64(e) < 4*int64(m.Len()+1)+denseSlack {
		m.grow(int(e) + 1)
	}
	if e >= 0 && e < ids.EntryID(len(m.dense)) {
		old = m.dense[e]
		m.dense[e] = loc
		if old.Len == 0 {
			m.inDense++
			return old, false
		}
		return old, true
	}
	if m.sparse == nil {
		m.sparse = map[ids.EntryID]Loc{}
	}
	old, replaced = m.sparse[e]
	m.sparse[e] = loc
	return old, replaced
}

// MarkDamaged marks entry e's record damaged if e still lives at loc, the
// location whose record failed, and reports whether it did (false also
// when it was marked already). A later Set of e, a new copy written
// over it, clears the mark.
func (m *Locs) MarkDamaged(e ids.EntryID, loc Loc) bool {
	if cur, ok := m.Get(e); !ok || cur != loc || m.Damaged(e) {
		return false
	}
	if m.damaged == nil {
		m.damaged = map[ids.EntryID]struct{}{}
	}
	m.damaged[e] = struct{}{}
	return true
}

// Damaged reports whether entry e's record is marked damaged.
func (m *Locs) Damaged(e ids.EntryID) bool {
	_, ok := m.damaged[e]
	return ok
}

// grow extends dense to n slots and moves the sparse ids it now covers.
func (m *Locs) grow(n int) {
	if n <= cap(m.dense) {
		m.dense = m.dense[:n]
	} else {
		m.dense = append(m.dense[:cap(m.dense)], make([]Loc, max(n, 2*cap(m.dense))-cap(m.dense))...)[:n]
	}
	for e, l := range m.sparse {
		if e >= 0 && e < ids.EntryID(n) {
			m.dense[e] = l
			m.inDense++
			delete(m.sparse, e)
		}
	}
}

// All yields every entry: the dense ones in increasing id order, then the
// sparse ones in increasing id order.
func (m *Locs) All() iter.Seq2[ids.EntryID, Loc] {
	return func(yield func(ids.EntryID, Loc) bool) {
		for i, l := range m.dense {
			if l.Len != 0 && !yield(ids.EntryID(i), l) {
				return
			}
		}
		for _, e := range slices.Sorted(maps.Keys(m.sparse)) {
			if !yield(e, m.sparse[e]) {
				return
			}
		}
	}
}

// Equal reports whether m and o hold the same entries at the same places,
// however each stores them. Damage marks are left out: they are found by
// reading records, which a replay from segment indexes does not do.
func (m *Locs) Equal(o *Locs) bool {
	if m.Len() != o.Len() {
		return false
	}
	for e, l := range m.All() {
		if ol, ok := o.Get(e); !ok || ol != l {
			return false
		}
	}
	return true
}

// Range is the entries First..Last, both included.
type Range struct{ First, Last ids.EntryID }

// AppendRanges appends to rs the runs of entries present in first..last
// and not marked damaged, in increasing order, extending rs's last range
// when a run continues it, and answers the entry it stopped before:
// last+1, or the first entry of a run that would have made rs longer than
// maxRanges.
func (m *Locs) AppendRanges(rs []Range, first, last ids.EntryID, maxRanges int) ([]Range, ids.EntryID) {
	add := func(e ids.EntryID) bool {
		if n := len(rs); n > 0 && rs[n-1].Last+1 == e {
			rs[n-1].Last = e
			return true
		}
		if len(rs) >= maxRanges {
			return false
		}
		rs = append(rs, Range{e, e})
		return true
	}
	for e := max(first, 0); e <= min(last, ids.EntryID(len(m.dense))-1); e++ {
		if m.dense[e].Len != 0 && !m.Damaged(e) && !add(e) {
			return rs, e
		}
	}
	// Every sparse id lies past dense, so after the dense ones in order.
	var sparse []ids.EntryID
	for e := range m.sparse {
		if e >= first && e <= last && !m.Damaged(e) {
			sparse = append(sparse, e)
		}
	}
	slices.Sort(sparse)
	for _, e := range sparse {
		if !add(e) {
			return rs, e
		}
	}
	return rs, last + 1
}

// EntryLoc is an entry id and its location.
type EntryLoc struct {
	Entry ids.EntryID
	Loc   Loc
}

// AppendFrom appends to dst, in increasing id order, at most n entries
// from id from up that are not marked damaged, and answers the id to go
// on from, or -1 once none is left. It lets a caller walk a ledger's
// entries a bounded batch at a time, letting go of its lock in between.
func (m *Locs) AppendFrom(dst []EntryLoc, from ids.EntryID, n int) ([]EntryLoc, ids.EntryID) {
	added := 0
	for e := max(from, 0); e < ids.EntryID(len(m.dense)); e++ {
		if added == n {
			return dst, e
		}
		if l := m.dense[e]; l.Len != 0 && !m.Damaged(e) {
			dst = append(dst, EntryLoc{e, l})
			added++
		}
	}
	var sparse []ids.EntryID
	for e := range m.sparse {
		if e >= from && !m.Damaged(e) {
			sparse = append(sparse, e)
		}
	}
	slices.Sort(sparse)
	for _, e := range sparse {
		if added == n {
			return dst, e
		}
		dst = append(dst, EntryLoc{e, m.sparse[e]})
		added++
	}
	return dst, -1
}
