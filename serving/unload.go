package serving

import (
	"context"
	"fmt"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// Graceful unload: an admin unload, a rebalance move, a node's Close.
//
// A new owner that finds the topic's last ledger open in the managed ledger
// must fence and recover it and read every entry of it again, to learn the
// producers' highest sequence ids and where their recent batches went:
// about 0.1 ms per entry, so up to seconds for a full ledger, during which
// the topic takes no publish. An owner that gives the topic up can spare
// its successor all of that, since it knows what it wrote. So it:
//
//  1. drains: takes no new batch (one that comes is neither written nor
//     answered, and its producer sends it again to the next owner), waits
//     for the appends in flight and sends their receipts;
//  2. flushes the cursors and closes the ledger;
//  3. records the ledger closed in the managed ledger (entries, bytes,
//     publish times, as a roll does) with the producers' highest persisted
//     sequence ids, by compare-and-swap;
//  4. releases the ownership (finishDrop);
//  5. ends its producers' streams (finishDrop): every batch it wrote has
//     been answered, so the next owner gets no resend that it would have
//     to answer with a position it does not know, and their lookups find
//     the topic free.
//
// The next owner then neither recovers nor reads the ledger (recoverLast).
// Whatever goes wrong (an append or a metadata update fails, the drain
// outlasts MetaTimeout, the session ends, the compare-and-swap loses, the
// bookies closed the ledger elsewhere than counted), step 3 is skipped and
// the next owner recovers and reads the ledger as after a crash: nothing
// acknowledged is lost and no resend is written twice.

// drainState is a graceful unload waiting for its appends in flight.
type drainState struct {
	done   chan struct{} // closed once drained, or once aborted
	closed bool
	// abortedBy and err are the reason and error of the drop that ended
	// the drain early (an append failed, say); then the ledger is not
	// recorded closed.
	abortedBy string
	err       error
}

// startDrainLocked turns a served topic to draining. A roll waiting for the
// appends in flight would never start now (rolls start only while the
// topic is served), so the batches queued for it go to the current ledger.
func (t *topic) startDrainLocked() {
	t.mu.state = topicDraining
	t.mu.drain = drainState{done: make(chan struct{})}
	if t.mu.rolling && !t.mu.rollRunning {
		t.mu.rolling = false
		q := t.mu.queued
		t.mu.queued = nil
		for _, b := range q {
			t.appendLocked(b)
		}
	}
	t.checkDrainedLocked()
}

// checkDrainedLocked ends the drain once nothing is in flight and no roll
// runs (a running roll appends its queued batches to the new ledger), or
// once it was aborted.
func (t *topic) checkDrainedLocked() {
	d := &t.mu.drain
	if t.mu.state != topicDraining || d.closed {
		return
	}
	if d.err != nil || (t.mu.inflight == 0 && !t.mu.rollRunning) {
		d.closed = true
		close(d.done)
	}
}

// abortDrainLocked ends the drain on behalf of a drop that came meanwhile.
func (t *topic) abortDrainLocked(reason string, err error) {
	d := &t.mu.drain
	if d.err == nil {
		d.abortedBy, d.err = reason, err
	}
	t.checkDrainedLocked()
}

// unload is the graceful part of a drop, steps 1 to 3 above, each bounded
// by MetaTimeout. It answers the reason the drop ends with: reason, or that
// of a drop (a lost session, a kill) that interrupted it and leaves nothing
// to do.
func (t *topic) unload(reason string) string {
	ctx, cancel := context.WithTimeout(context.Background(), t.n.cfg.MetaTimeout)
	abortedBy, drainErr := t.waitDrained(ctx)
	cancel()
	if abortedBy == reasonSession || abortedBy == reasonKilled {
		return abortedBy
	}
	if drainErr != nil {
		t.log.Warn("unload: appends in flight did not all complete; the next owner recovers the ledger", "err", drainErr)
	}
	// A drain that timed out leaves the flush its own time, as before.
	ctx, cancel = context.WithTimeout(context.Background(), t.n.cfg.MetaTimeout)
	defer cancel()
	t.flushCursors(ctx)
	t.closeLedger(ctx, drainErr == nil)
	return reason
}

// waitDrained waits for the drain to end and marks the topic dropped; it
// answers the reason and error of what aborted the drain, if anything did.
func (t *topic) waitDrained(ctx context.Context) (abortedBy string, err error) {
	t.mu.Lock()
	done := t.mu.drain.done
	t.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.mu.drain.closed {
		t.abortDrainLocked(reasonUnload, errcode.New(errcode.Timeout, "topic %s: appends in flight outlasted the unload", t.name))
	}
	t.mu.state = topicDropped
	return t.mu.drain.abortedBy, t.mu.drain.err
}

// closeLedger closes the drained writer and, when record, stores the
// ledger closed in the managed ledger (step 3).
func (t *topic) closeLedger(ctx context.Context, record bool) {
	// No roll, trim, offload or compaction updates the managed ledger
	// meanwhile, and each updates t.mu.ml under mlMu: ml is the stored one.
	t.mlMu.Lock()
	defer t.mlMu.Unlock()
	t.mu.Lock()
	w, cur, ml, seqs := t.mu.w, t.mu.cur, t.mu.ml, persistedSeqs(t.mu.dedup)
	t.mu.Unlock()
	if w == nil {
		return
	}
	if err := w.Close(ctx, cur.annotate(t.name)); err != nil {
		t.log.Warn("closing ledger on unload", "err", err)
		return
	}
	if !record {
		return
	}
	if err := t.recordClosed(ctx, ml, w.ID(), cur, seqs); err != nil {
		t.log.Warn("unload: ledger not recorded closed; the next owner recovers it", "ledger", w.ID(), "err", err)
	}
}

// recordClosed compares-and-swaps ml with its last ledger, id, closed after
// cur's entries, and the producers' persisted sequence ids seqs.
func (t *topic) recordClosed(ctx context.Context, ml *metadata.ManagedLedger, id ids.LedgerID, cur ledgerProgress, seqs map[string]int64) error {
	next := cloneML(ml)
	if n := len(next.Ledgers); n == 0 || next.Ledgers[n-1].ID != id {
		return fmt.Errorf("ledger %d is not the last of the managed ledger", id)
	}
	li := &next.Ledgers[len(next.Ledgers)-1]
	// The next owner serves exactly the entries counted here: were the
	// bookies' close to disagree, entries past the count would be lost to
	// every reader.
	l, err := t.n.meta.GetLedger(ctx, id)
	if err != nil {
		return fmt.Errorf("reading the closed ledger: %w", err)
	}
	if l.State != metadata.LedgerClosed || int64(l.LastEntry)+1 != cur.entries {
		return fmt.Errorf("ledger %s with last entry %d, but %d entries written", l.State, l.LastEntry, cur.entries)
	}
	li.Entries, li.Bytes, li.Closed = cur.entries, cur.bytes, true
	li.FirstPublishTime, li.LastPublishTime = cur.firstPub, cur.lastPub
	next.Producers = seqs
	if err := t.n.meta.PutManagedLedger(ctx, next); err != nil {
		return fmt.Errorf("storing the managed ledger: %w", err)
	}
	t.mu.Lock()
	t.mu.ml = next
	t.mu.Unlock()
	return nil
}
