package index

import (
	"maps"
	"slices"

	"github.com/strata-mq/strata/internal/ids"
)

// Loc is where a record lives in the journal.
type Loc struct {
	File uint32 // segment id
	Off  uint32 // byte offset of the record
	Len  uint32 // encoded length of the record
}

// Ledger is what the index knows of one ledger.
type Ledger struct {
	Fenced  bool
	Deleted bool
	// DeletedIn is, for a deleted ledger, the journal segment holding its
	// (latest) delete record: every record of the ledger lies in it or in
	// an older segment, so once those are all removed the ledger's state
	// can be forgotten (Table.Prune).
	DeletedIn uint32
	// LAC is the max of the LACs piggy-backed on stored entries.
	LAC ids.EntryID
	// Last is the highest stored entry id.
	Last    ids.EntryID
	Entries Locs
}

func newLedger() *Ledger {
	return &Ledger{LAC: ids.NoEntry, Last: ids.NoEntry}
}

// Table maps ledgers to their entries' locations.
type Table struct {
	Ledgers map[ids.LedgerID]*Ledger
	// Live counts the indexed entries held by each journal segment, and
	// LiveBytes their encoded bytes.
	Live      map[uint32]int
	LiveBytes map[uint32]int64
	// tombstones lists the deleted ledgers by DeletedIn, for Prune.
	tombstones map[uint32][]ids.LedgerID
}

// New returns an empty table.
func New() *Table {
	return &Table{Ledgers: map[ids.LedgerID]*Ledger{}, Live: map[uint32]int{}, LiveBytes: map[uint32]int64{}, tombstones: map[uint32][]ids.LedgerID{}}
}

// Entries counts the entries of every ledger.
func (t *Table) Entries() int {
	n := 0
	for _, c := range t.Live {
		n += c
	}
	return n
}

// Get returns the ledger or nil.
func (t *Table) Get(l ids.LedgerID) *Ledger { return t.Ledgers[l] }

func (t *Table) ledger(l ids.LedgerID) *Ledger {
	led := t.Ledgers[l]
	if led == nil {
		led = newLedger()
		t.Ledgers[l] = led
	}
	return led
}

// Put records entry e of ledger l at loc with its piggy-backed lac. A put
// into a deleted ledger is ignored.
func (t *Table) Put(l ids.LedgerID, e, lac ids.EntryID, loc Loc) {
	led := t.ledger(l)
	if led.Deleted {
		return
	}
	if old, ok := led.Entries.Set(e, loc); ok {
		t.release(old)
	}
	t.hold(loc)
	led.Last = max(led.Last, e)
	led.LAC = max(led.LAC, lac)
}

// MarkDamaged marks entry e of ledger l damaged if the entry still lives
// at loc, whose record failed its checksum, and reports whether it did
// (Locs.MarkDamaged). A marked entry is still held, so that reads of it
// answer a corruption error rather than a missing entry, but it is not
// listed as stored (Locs.AppendRanges): a copy from another bookie, a
// later Put, replaces it.
func (t *Table) MarkDamaged(l ids.LedgerID, e ids.EntryID, loc Loc) bool {
	led := t.Ledgers[l]
	return led != nil && !led.Deleted && led.Entries.MarkDamaged(e, loc)
}

// DamagedAt reports whether entry e of ledger l lives at loc and is marked
// damaged there.
func (t *Table) DamagedAt(l ids.LedgerID, e ids.EntryID, loc Loc) bool {
	led := t.Ledgers[l]
	if led == nil || led.Deleted {
		return false
	}
	cur, ok := led.Entries.Get(e)
	return ok && cur == loc && led.Entries.Damaged(e)
}

// Fence marks ledger l fenced (creating it if unknown).
func (t *Table) Fence(l ids.LedgerID) { t.ledger(l).Fenced = true }

// Delete marks ledger l deleted and forgets its entries; seg is the
// segment that holds the delete record.
func (t *Table) Delete(l ids.LedgerID, seg uint32) {
	led := t.ledger(l)
	for _, loc := range led.Entries.All() {
		t.release(loc)
	}
	led.Deleted = true
	led.Entries = Locs{}
	led.LAC, led.Last = ids.NoEntry, ids.NoEntry
	t.entomb(l, led, max(led.DeletedIn, seg))
}

func (t *Table) entomb(l ids.LedgerID, led *Ledger, seg uint32) {
	led.DeletedIn = seg
	t.tombstones[seg] = append(t.tombstones[seg], l)
}

// ClampDeletedIn moves every tombstone said to lie past segment max back
// to max. Checkpoints of earlier versions bound a deleted ledger's delete
// record by their own position, which may name a segment that never held
// a record and is gone (an unused spare); a checkpoint taken at a position
// before that segment must not name it.
func (t *Table) ClampDeletedIn(max uint32) {
	for seg, ls := range t.tombstones {
		if seg <= max {
			continue
		}
		for _, l := range ls {
			if led := t.Ledgers[l]; led != nil && led.Deleted && led.DeletedIn > max {
				t.entomb(l, led, max)
			}
		}
		delete(t.tombstones, seg)
	}
}

// Prune forgets every deleted ledger whose records all lie in segments
// before oldest, the oldest segment still on disk, and returns how many.
// No replay can meet those records again, so the tombstone has nothing
// left to hide; without pruning, a bookie would carry every ledger it ever
// deleted in each checkpoint. An add to a pruned ledger is taken as one to
// a new ledger, as on a BookKeeper bookie, which learns of deletions only
// through its garbage collection; it would come from a writer that
// outlived the deletion by the life of every segment written since.
func (t *Table) Prune(oldest uint32) int {
	n := 0
	for seg, ls := range t.tombstones {
		if seg >= oldest {
			continue
		}
		for _, l := range ls {
			// A ledger deleted again later is listed under its later
			// segment too, and kept until that one goes.
			if led := t.Ledgers[l]; led != nil && led.Deleted && led.DeletedIn < oldest {
				delete(t.Ledgers, l)
				n++
			}
		}
		delete(t.tombstones, seg)
	}
	return n
}

// LiveLedgers answers, ascending, the first max ledgers from first up
// that the table holds and that are not deleted (entries, or a fence
// alone), and whether more follow them. It looks at every ledger once
// and sorts at most 2×max ids at a time, so that the caller can hold its
// lock over it as over a checkpoint's encoding.
func (t *Table) LiveLedgers(first ids.LedgerID, max int) (out []ids.LedgerID, more bool) {
	// Once more than max were seen, none at or above the max-th smallest
	// so far can be in the answer.
	var limit ids.LedgerID
	for id, led := range t.Ledgers {
		if id < first || led.Deleted || (more && id >= limit) {
			continue
		}
		out = append(out, id)
		if len(out) == 2*max {
			slices.Sort(out)
			out, more, limit = out[:max], true, out[max-1]
		}
	}
	slices.Sort(out)
	if len(out) > max {
		out, more = out[:max], true
	}
	return out, more
}

func (t *Table) hold(loc Loc) {
	t.Live[loc.File]++
	t.LiveBytes[loc.File] += int64(loc.Len)
}

func (t *Table) release(loc Loc) {
	t.LiveBytes[loc.File] -= int64(loc.Len)
	if t.Live[loc.File]--; t.Live[loc.File] <= 0 {
		delete(t.Live, loc.File)
		delete(t.LiveBytes, loc.File)
	}
}

// Equal reports whether two ledgers hold the same state, however their
// entries are stored.
func (l *Ledger) Equal(o *Ledger) bool {
	return l.Fenced == o.Fenced && l.Deleted == o.Deleted && l.DeletedIn == o.DeletedIn && l.LAC == o.LAC && l.Last == o.Last && l.Entries.Equal(&o.Entries)
}

// Equal reports whether two tables hold the same ledgers and live counts.
func (t *Table) Equal(u *Table) bool {
	if len(t.Ledgers) != len(u.Ledgers) || !maps.Equal(t.Live, u.Live) || !maps.Equal(t.LiveBytes, u.LiveBytes) {
		return false
	}
	for id, l := range t.Ledgers {
		if o := u.Ledgers[id]; o == nil || !l.Equal(o) {
			return false
		}
	}
	return true
}
