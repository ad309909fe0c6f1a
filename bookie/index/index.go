package index

import (
	"maps"

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
}

// New returns an empty table.
func New() *Table {
	return &Table{Ledgers: map[ids.LedgerID]*Ledger{}, Live: map[uint32]int{}, LiveBytes: map[uint32]int64{}}
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

// Fence marks ledger l fenced (creating it if unknown).
func (t *Table) Fence(l ids.LedgerID) { t.ledger(l).Fenced = true }

// Delete marks ledger l deleted and forgets its entries.
func (t *Table) Delete(l ids.LedgerID) {
	led := t.ledger(l)
	for _, loc := range led.Entries.All() {
		t.release(loc)
	}
	led.Deleted = true
	led.Entries = Locs{}
	led.LAC, led.Last = ids.NoEntry, ids.NoEntry
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
	return l.Fenced == o.Fenced && l.Deleted == o.Deleted && l.LAC == o.LAC && l.Last == o.Last && l.Entries.Equal(&o.Entries)
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
