package serving

import (
	"context"
	"time"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// trim deletes the oldest closed ledgers that every durable subscription has
// consumed, that the topic's compaction (if any) has compacted, and that are
// past the namespace's retention. A topic without durable subscriptions or
// compaction keeps nothing past retention (as in Pulsar). The current ledger
// is never deleted.
func (t *topic) trim(ctx context.Context) {
	if pol, err := t.n.policyFor(ctx, t.name, t.ns); err == nil {
		t.policy.Store(&pol) // a set-policy reaches a loaded topic here
	} else {
		t.log.Debug("re-reading the namespace and topic policies; keeping the last ones", "err", err)
	}
	t.expire(ctx)
	t.maybeCompact()
	if t.pol().RetentionMs < 0 {
		return
	}
	// Never while an offload pass runs: it may be uploading or deleting a
	// ledger this trim would delete. The next round retries.
	if !t.tier.mu.TryLock() {
		t.log.Debug("trim skipped: an offload is running")
		return
	}
	defer t.tier.mu.Unlock()
	t.mlMu.Lock()
	defer t.mlMu.Unlock()
	t.mu.Lock()
	if t.mu.state != topicServing {
		t.mu.Unlock()
		return
	}
	n := t.trimmableLocked(time.Now())
	if n == 0 {
		t.mu.Unlock()
		return
	}
	next := cloneML(t.mu.ml)
	gone := append([]metadata.LedgerInfo(nil), next.Ledgers[:n]...)
	next.Ledgers = next.Ledgers[n:]
	t.mu.Unlock()
	if err := t.n.meta.PutManagedLedger(ctx, next); err != nil {
		t.dropOnError("trimming managed ledger", metaConflict("trim", err))
		return
	}
	t.mu.Lock()
	t.mu.ml = next
	t.mu.Unlock()
	for _, li := range gone {
		t.deleteLedger(ctx, li.ID)
	}
}

// expire acknowledges, on every durable subscription, the messages older
// than the namespace's TTL (an invariant-4 exception: expired messages may
// be skipped unacknowledged).
func (t *topic) expire(ctx context.Context) {
	ttl := t.pol().TTLMs
	if ttl <= 0 {
		return
	}
	cutoff := time.Now().Add(-time.Duration(ttl) * time.Millisecond).UnixNano()
	target, err := t.positionAt(ctx, cutoff)
	if err != nil {
		t.log.Warn("finding expired messages", "err", err)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.mu.subs {
		if s.durable {
			s.expireLocked(target)
		}
	}
}

// trimmableLocked counts the leading ledgers that may be deleted.
func (t *topic) trimmableLocked(now time.Time) int {
	o := t.orderLocked()
	var slowest *ids.Position
	for _, s := range t.mu.subs {
		if s.durable && (slowest == nil || o.cmp(s.acks.markDelete, *slowest) < 0) {
			md := s.acks.markDelete
			slowest = &md
		}
	}
	// The compaction's horizon holds the ledgers after it as a cursor
	// would (Pulsar's __compaction subscription): trimmed before the next
	// compaction folds them in, the latest values of their keys were lost
	// to compacted readers, which went on getting the values they replaced.
	if c := t.mu.ml.Compaction; c != nil && (slowest == nil || o.cmp(c.Horizon, *slowest) < 0) {
		h := c.Horizon
		slowest = &h
	}
	retention := time.Duration(t.pol().RetentionMs) * time.Millisecond
	ls := t.mu.ml.Ledgers
	n := 0
	for i := 0; i < len(ls)-1; i++ {
		li := ls[i]
		if !li.Closed {
			break
		}
		last := ids.Position{Ledger: li.ID, Entry: ids.EntryID(li.Entries - 1)}
		if slowest != nil && o.cmp(last, *slowest) > 0 {
			break
		}
		at := li.LastPublishTime
		if at == 0 {
			at = li.CreatedAt
		}
		if now.Sub(time.Unix(0, at)) < retention {
			break
		}
		n++
	}
	return n
}

// deleteLedger deletes a trimmed ledger: its segment objects when it was
// offloaded (before its metadata, which names them; objects left behind
// by a failure are named by nothing and collected by
// tiering.CollectGarbage), its bookie copy and its metadata.
func (t *topic) deleteLedger(ctx context.Context, id ids.LedgerID) {
	l, err := t.n.meta.GetLedger(ctx, id)
	if err == nil && l.Offload != nil && t.n.tier != nil {
		t.deleteSegments(l.Offload.Segments)
	}
	if err == nil {
		err = t.n.ledgers.Delete(ctx, l)
	}
	if err != nil {
		t.log.Warn("deleting consumed ledger", "ledger", id, "err", err)
	}
}
