package metatest

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// MemLedgerStore is an in-memory metadata.LedgerStore for unit tests and
// simulations: the same compare-and-swap semantics and errors as the etcd
// Store (ErrBadVersion, ErrLedgerExists, ErrNotFound), versions from one
// counter like etcd revisions, records deep-copied in and out.
type MemLedgerStore struct {
	mu      sync.Mutex
	rev     int64
	nextID  ids.LedgerID
	ledgers map[ids.LedgerID][]byte // JSON, as stored in etcd
	vers    map[ids.LedgerID]int64
}

var _ metadata.LedgerStore = (*MemLedgerStore)(nil)

// NewMemLedgerStore returns an empty store whose first ledger id is 1.
func NewMemLedgerStore() *MemLedgerStore {
	return &MemLedgerStore{nextID: 1, ledgers: map[ids.LedgerID][]byte{}, vers: map[ids.LedgerID]int64{}}
}

// NewLedgerID hands out 1, 2, 3, ...
func (m *MemLedgerStore) NewLedgerID(ctx context.Context) (ids.LedgerID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.nextID
	m.nextID++
	return id, ctx.Err()
}

// CreateLedger stores l iff its id is unused and sets l.Version.
func (m *MemLedgerStore) CreateLedger(_ context.Context, l *metadata.Ledger) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l.ID == 0 {
		return errcode.New(errcode.InvalidArgument, "metatest: ledger without an id")
	}
	if _, ok := m.ledgers[l.ID]; ok {
		return metadata.ErrLedgerExists
	}
	return m.storeLocked(l)
}

// GetLedger returns a copy of the stored ledger; metadata.ErrNotFound if absent.
func (m *MemLedgerStore) GetLedger(_ context.Context, id ids.LedgerID) (*metadata.Ledger, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.ledgers[id]
	if !ok {
		return nil, metadata.ErrNotFound
	}
	var l metadata.Ledger
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, err
	}
	l.Version = m.vers[id]
	return &l, nil
}

// UpdateLedger stores l iff the stored version equals l.Version.
func (m *MemLedgerStore) UpdateLedger(_ context.Context, l *metadata.Ledger) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.vers[l.ID]; !ok || v != l.Version {
		return metadata.ErrBadVersion
	}
	return m.storeLocked(l)
}

// DeleteLedger removes a ledger; absent is not an error.
func (m *MemLedgerStore) DeleteLedger(_ context.Context, id ids.LedgerID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.ledgers, id)
	delete(m.vers, id)
	return nil
}

func (m *MemLedgerStore) storeLocked(l *metadata.Ledger) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	m.rev++
	m.ledgers[l.ID], m.vers[l.ID], l.Version = b, m.rev, m.rev
	return nil
}
