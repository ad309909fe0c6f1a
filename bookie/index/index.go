package index

import (
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
	Entries map[ids.EntryID]Loc
}

func newLedger() *Ledger {
	return &Ledger{LAC: ids.NoEntry, Last: ids.NoEntry, Entries: map[ids.EntryID]Loc{}}
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
	if old, ok := led.Entries[e]; ok {
		t.release(old)
	}
	led.Entries[e] = loc
	t.hold(loc)
	led.Last = max(led.Last, e)
	led.LAC = max(led.LAC, lac)
}

// Fence marks ledger l fenced (creating it if unknown).
func (t *Table) Fence(l ids.LedgerID) { t.ledger(l).Fenced = true }

// Delete marks ledger l deleted and forgets its entries.
func (t *Table) Delete(l ids.LedgerID) {
	led := t.ledger(l)
	for _, loc := range led.Entries {
		t.release(loc)
	}
	led.Deleted = true
	led.Entries = map[ids.EntryID]Loc{}
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
