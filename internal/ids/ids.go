package ids

import "fmt"

// LedgerID names a ledger. Ledger ids are allocated cluster-wide by the
// metadata store and are never reused. 0 is never a valid ledger.
type LedgerID uint64

// EntryID is an entry's index inside its ledger, starting at 0.
type EntryID int64

// NoEntry is the EntryID of "nothing yet": the LAC of an empty ledger.
const NoEntry EntryID = -1

// Position is the place of an entry in a topic's managed ledger.
type Position struct {
	Ledger LedgerID
	Entry  EntryID
}

// Less orders positions by ledger, then entry.
func (p Position) Less(q Position) bool {
	if p.Ledger != q.Ledger {
		return p.Ledger < q.Ledger
	}
	return p.Entry < q.Entry
}

func (p Position) String() string { return fmt.Sprintf("%d:%d", p.Ledger, p.Entry) }

// MessageID names one message: an entry and the message's index inside the
// entry's batch.
type MessageID struct {
	Ledger LedgerID
	Entry  EntryID
	Batch  int32
}

// Position returns the entry that holds the message.
func (m MessageID) Position() Position { return Position{m.Ledger, m.Entry} }

// Less orders message ids by ledger, entry, then batch index.
func (m MessageID) Less(n MessageID) bool {
	if m.Ledger != n.Ledger || m.Entry != n.Entry {
		return m.Position().Less(n.Position())
	}
	return m.Batch < n.Batch
}

func (m MessageID) String() string { return fmt.Sprintf("%d:%d:%d", m.Ledger, m.Entry, m.Batch) }
