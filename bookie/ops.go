package bookie

import (
	"context"
	"fmt"

	"github.com/strata-mq/strata/internal/ids"
)

// Entry is one stored entry of a ledger.
type Entry struct {
	Ledger ids.LedgerID
	ID     ids.EntryID
	// LAC is the writer's last-add-confirmed when it sent this entry.
	LAC     ids.EntryID
	Payload []byte
	// Recovery marks a re-replication add: the only add a fenced ledger takes.
	Recovery bool
}

func (b *Bookie) checkEntry(e *Entry) error {
	switch {
	case e.Ledger == 0:
		return fmt.Errorf("%w: ledger id 0", ErrInvalidArgument)
	case e.ID < 0:
		return fmt.Errorf("%w: negative entry id %d", ErrInvalidArgument, e.ID)
	case e.LAC < ids.NoEntry:
		return fmt.Errorf("%w: lac %d below -1", ErrInvalidArgument, e.LAC)
	case len(e.Payload) > b.cfg.MaxEntryBytes:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(e.Payload), b.cfg.MaxEntryBytes)
	case !e.Recovery && b.readOnly.Load():
		return b.readOnlyErr()
	}
	return nil
}

func addRequest(e Entry) *request {
	return &request{op: opAdd, ledger: e.Ledger, entry: e.ID, lac: e.LAC, payload: e.Payload, recovery: e.Recovery}
}

// Add appends e and returns once it is durable. It fails with ErrFenced if
// the ledger is fenced (unless e.Recovery), ErrLedgerNotFound if it was
// deleted, ErrTooLarge or ErrInvalidArgument for a bad entry, ErrReadOnly
// while the bookie is read-only (unless e.Recovery). Cancelling ctx
// abandons the wait, not the add: an add already queued may still be
// written. The bookie keeps a reference to e.Payload until the add is answered.
func (b *Bookie) Add(ctx context.Context, e Entry) error {
	if err := b.checkEntry(&e); err != nil {
		return err
	}
	_, err := b.do(ctx, addRequest(e))
	return err
}

// AddAsync queues e and calls done once with its outcome (nil once
// durable). done runs on a journal goroutine and must not block.
// If AddAsync returns an error, done is never called.
func (b *Bookie) AddAsync(ctx context.Context, e Entry, done func(error)) error {
	if err := b.checkEntry(&e); err != nil {
		return err
	}
	r := addRequest(e)
	r.done = func(res result) { done(res.err) }
	return b.submit(ctx, r)
}

// Fence makes ledger l read-only on this bookie, durably: the fence record is
// fsync'd before Fence returns, and survives restarts. Every add to l queued
// after the fence (even in the same group commit) fails with ErrFenced,
// except recovery adds. It returns the ledger's LAC and last stored entry;
// no non-recovery add past last is ever acknowledged. Fencing an unknown
// ledger records it as fenced and empty (-1, -1).
func (b *Bookie) Fence(ctx context.Context, l ids.LedgerID) (lac, last ids.EntryID, err error) {
	if l == 0 {
		return 0, 0, fmt.Errorf("%w: ledger id 0", ErrInvalidArgument)
	}
	res, err := b.do(ctx, &request{op: opFence, ledger: l})
	if err != nil {
		return 0, 0, err
	}
	return res.lac, res.last, nil
}

// Delete removes ledger l durably: once it returns, reads and adds fail with
// ErrLedgerNotFound, also after a restart. Disk space comes back when no
// journal segment holds a live entry of l any more (see reclaim).
func (b *Bookie) Delete(ctx context.Context, l ids.LedgerID) error {
	if l == 0 {
		return fmt.Errorf("%w: ledger id 0", ErrInvalidArgument)
	}
	_, err := b.do(ctx, &request{op: opDelete, ledger: l})
	return err
}
