package serving

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
	"github.com/strata-mq/strata/tiering"
	"github.com/strata-mq/strata/tiering/segment"
)

// topicTier is a topic's offload state.
//
// mu serialises, per topic, everything that moves or deletes a closed
// ledger's data: offload passes (upload, metadata CAS, bookie deletion)
// and retention (trim). It is held across their I/O; trim only TryLocks
// it and skips a round when an offload runs, so a ledger is never deleted
// while being offloaded nor offloaded after its deletion. Every step
// re-reads the ledger's record and writes it by compare-and-swap, so a
// step that raced anyway fails rather than overwrites. LOCKORDER: tier.mu
// before mlMu before mu.
type topicTier struct {
	mu       sync.Mutex
	running  atomic.Bool // a background pass is running
	failures int         // consecutive failed passes (under mu)
	nextTry  time.Time   // no background pass before (under mu)
	deleted  map[ids.LedgerID]bool
	lastGC   time.Time // under mu
}

// maybeOffload starts a background offload pass unless one runs. Called by
// the topic's run goroutine.
func (t *topic) maybeOffload() {
	if t.n.tier == nil || !t.tier.running.CompareAndSwap(false, true) {
		return
	}
	t.goOwned(func() {
		defer t.tier.running.Store(false)
		if _, err := t.offloadPass(t.ctx, false); err != nil && t.ctx.Err() == nil {
			t.log.Warn("offload pass failed; will retry", "err", err)
		}
	})
}

// offloadPass offloads the closed ledgers that the topic's policy (or,
// when force, TriggerOffload) selects, one at a time in log order, then
// deletes from the bookies the offloaded ledgers past the deletion lag.
// It answers how many ledgers it offloaded. A failure stops the pass and
// delays the next background pass by an exponential backoff; nothing is
// deleted from the bookies for a ledger whose offload did not complete.
func (t *topic) offloadPass(ctx context.Context, force bool) (int, error) {
	t.tier.mu.Lock()
	defer t.tier.mu.Unlock()
	now := time.Now()
	if !force && now.Before(t.tier.nextTry) {
		return 0, nil
	}
	mctx, cancel := context.WithTimeout(ctx, t.n.cfg.MetaTimeout)
	pol, err := t.n.policyFor(mctx, t.name, t.ns) // re-read: set-policy reaches a loaded topic
	cancel()
	if err != nil {
		return 0, t.offloadFailed(err)
	}
	count := 0
	for _, id := range t.offloadCandidates(pol, force, now) {
		did, err := t.offloadLedger(ctx, id)
		if err != nil {
			return count, t.offloadFailed(err)
		}
		if did {
			count++
		}
	}
	if err := t.deleteOffloaded(ctx, pol); err != nil {
		return count, t.offloadFailed(err)
	}
	if time.Since(t.tier.lastGC) >= t.n.tier.cfg.GCInterval {
		t.collectGarbage(ctx)
	}
	t.tier.failures, t.tier.nextTry = 0, time.Time{}
	return count, nil
}

// offloadFailed records a failed pass for the backoff and returns err.
func (t *topic) offloadFailed(err error) error {
	cfg := t.n.tier.cfg
	backoff := cfg.RetryBackoff
	for i := 0; i < t.tier.failures && backoff < cfg.MaxRetryBackoff; i++ {
		backoff *= 2
	}
	t.tier.failures++
	t.tier.nextTry = time.Now().Add(min(backoff, cfg.MaxRetryBackoff))
	t.n.m.offloadFailures.Inc()
	return err
}

// offloadCandidates lists, oldest first, the closed ledgers not yet
// offloaded that the policy selects: all of them when force; else those
// older than OffloadAgeMs (age counted from the last publish, or creation
// when empty) and, oldest first, those that bring the topic's
// bookie-resident bytes down to OffloadThresholdBytes. The current ledger
// is never a candidate.
func (t *topic) offloadCandidates(pol metadata.NamespacePolicy, force bool, now time.Time) []ids.LedgerID {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.state != topicServing {
		return nil
	}
	ls := t.mu.ml.Ledgers
	var resident int64
	for i, li := range ls {
		if !li.Offloaded {
			resident += int64(li.Bytes)
		}
		if i == len(ls)-1 && !li.Closed {
			resident += int64(t.mu.cur.bytes)
		}
	}
	var out []ids.LedgerID
	for i, li := range ls {
		if i == len(ls)-1 || !li.Closed || li.Offloaded {
			continue
		}
		at := li.LastPublishTime
		if at == 0 {
			at = li.CreatedAt
		}
		byAge := pol.OffloadAgeMs >= 0 && now.Sub(time.Unix(0, at)) >= time.Duration(pol.OffloadAgeMs)*time.Millisecond
		bySize := pol.OffloadThresholdBytes >= 0 && resident > pol.OffloadThresholdBytes
		if force || byAge || bySize {
			out = append(out, li.ID)
			resident -= int64(li.Bytes)
		}
	}
	return out
}

// offloadLedger offloads one closed ledger: it re-reads the ledger's
// record, marks it started (CAS), has the offloader write, read back and
// verify the segments, stores the complete record (CAS), then sets the
// managed ledger's Offloaded flag (CAS). It answers false when there was
// nothing to do (the ledger left the managed ledger, or is offloaded).
func (t *topic) offloadLedger(ctx context.Context, id ids.LedgerID) (bool, error) {
	select {
	case t.n.tier.slots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-t.n.tier.slots }()
	if !t.inManagedLedger(id) {
		return false, nil
	}
	l, err := t.n.meta.GetLedger(ctx, id)
	if errors.Is(err, metadata.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, unavailable("reading ledger to offload", err)
	}
	if readable(l) {
		return false, t.markOffloaded(ctx, id) // offloaded earlier; the flag was not stored
	}
	if l.State != metadata.LedgerClosed {
		return false, nil
	}
	l.Offload = &metadata.Offload{State: metadata.OffloadStarted}
	if err := t.n.meta.UpdateLedger(ctx, l); err != nil {
		return false, fmt.Errorf("marking ledger %d offload started: %w", id, err)
	}
	off, err := t.n.tier.off.Offload(ctx, l)
	if err != nil {
		return false, fmt.Errorf("offloading ledger %d: %w", id, err)
	}
	l.Offload = off
	if err := t.n.meta.UpdateLedger(ctx, l); err != nil {
		// Someone changed the record meanwhile, or the write failed; a
		// write that answered an error (a timeout) may have landed all
		// the same. Delete the segments only when the record, read again,
		// does not name them; let the next pass decide again.
		if t.unrecorded(id, off.Segments) {
			t.deleteSegments(off.Segments)
		}
		return false, fmt.Errorf("recording ledger %d offload: %w", id, err)
	}
	t.n.m.offloadedLedgers.Inc()
	return true, t.markOffloaded(ctx, id)
}

func (t *topic) inManagedLedger(id ids.LedgerID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.state == topicServing && t.orderLocked().index(id) >= 0
}

// markOffloaded sets LedgerInfo.Offloaded of id in the managed ledger.
func (t *topic) markOffloaded(ctx context.Context, id ids.LedgerID) error {
	t.mlMu.Lock()
	defer t.mlMu.Unlock()
	t.mu.Lock()
	if t.mu.state != topicServing {
		t.mu.Unlock()
		return errcode.New(errcode.TopicFenced, "topic %s is no longer served here", t.name)
	}
	i := t.orderLocked().index(id)
	if i < 0 || t.mu.ml.Ledgers[i].Offloaded {
		t.mu.Unlock()
		return nil
	}
	next := cloneML(t.mu.ml)
	next.Ledgers[i].Offloaded = true
	t.mu.Unlock()
	if err := t.n.meta.PutManagedLedger(ctx, next); err != nil {
		err = metaConflict("marking ledger offloaded", err)
		if errcode.CodeOf(err) == errcode.TopicFenced {
			t.dropOnError("marking ledger offloaded", err)
		}
		return err
	}
	t.mu.Lock()
	t.mu.ml = next
	t.mu.Unlock()
	return nil
}

// deleteOffloaded deletes from the bookies the offloaded ledgers whose
// offload completed at least OffloadDeletionLagMs ago, then records the
// deletion (state deleted, CAS). Reads already go to the object store once
// an offload is complete, so no read races the deletion.
func (t *topic) deleteOffloaded(ctx context.Context, pol metadata.NamespacePolicy) error {
	d := t.n.tier.deleter
	if d == nil {
		return nil
	}
	t.mu.Lock()
	var todo []ids.LedgerID
	for _, li := range t.mu.ml.Ledgers {
		if li.Offloaded && !t.tier.deleted[li.ID] {
			todo = append(todo, li.ID)
		}
	}
	t.mu.Unlock()
	lag := time.Duration(pol.OffloadDeletionLagMs) * time.Millisecond
	for _, id := range todo {
		l, err := t.n.meta.GetLedger(ctx, id)
		if errors.Is(err, metadata.ErrNotFound) {
			continue
		}
		if err != nil {
			return unavailable("reading offloaded ledger", err)
		}
		if l.Offload == nil || l.Offload.State == metadata.OffloadStarted {
			continue // not verified: never deleted
		}
		if l.Offload.State == metadata.OffloadDeleted {
			t.rememberDeleted(id)
			continue
		}
		if time.Since(time.Unix(0, l.Offload.CompletedAt)) < lag {
			continue
		}
		if ok, err := t.segmentsIntact(ctx, l); err != nil {
			return err
		} else if !ok {
			continue // a missing or short object keeps the bookie copy
		}
		if err := d.DeleteFromBookies(ctx, l); err != nil {
			return fmt.Errorf("deleting offloaded ledger %d from bookies: %w", id, err)
		}
		l.Offload.State = metadata.OffloadDeleted
		if err := t.n.meta.UpdateLedger(ctx, l); err != nil {
			return fmt.Errorf("recording ledger %d deleted from bookies: %w", id, err)
		}
		t.rememberDeleted(id)
		t.log.Info("offloaded ledger deleted from bookies", "ledger", id)
	}
	return nil
}

// segmentsIntact checks, just before the bookie copy of l goes, that every
// object of its offload still holds what the record's index says: the
// size it was written at, and every batch's checksum, rows and entries,
// read as readers read them (one range read per batch, bypassing the
// reader's cache). Offload verified the objects, but the deletion lag
// may be long, and after the deletion the objects are the only copy. One
// gone, cut short or damaged since (deleted by hand, a bucket lifecycle
// rule, a bad disk) is logged and the bookie copy kept, which readers
// then fall back to; an error reaching the store is returned.
func (t *topic) segmentsIntact(ctx context.Context, l *metadata.Ledger) (bool, error) {
	for _, s := range l.Offload.Segments {
		info, err := t.n.tier.store.Stat(ctx, s.Key)
		switch {
		case tiering.IsNotFound(err):
			t.log.Error("offloaded object is gone: the ledger stays on the bookies", "ledger", l.ID, "object", s.Key)
			return false, nil
		case err != nil:
			return false, fmt.Errorf("checking object %s of ledger %d: %w", s.Key, l.ID, err)
		case info.Size != s.Bytes:
			t.log.Error("offloaded object has changed size: the ledger stays on the bookies", "ledger", l.ID, "object", s.Key,
				"bytes", info.Size, "written", s.Bytes)
			return false, nil
		}
		for _, b := range s.Batches {
			_, err := segment.ReadBatch(ctx, t.n.tier.store, s.Key, b)
			switch {
			case damagedObject(err):
				t.log.Error("offloaded object fails verification: the ledger stays on the bookies", "ledger", l.ID, "object", s.Key, "err", err)
				return false, nil
			case err != nil:
				return false, fmt.Errorf("verifying object %s of ledger %d: %w", s.Key, l.ID, err)
			}
		}
	}
	return true, nil
}

func (t *topic) rememberDeleted(id ids.LedgerID) {
	if t.tier.deleted == nil {
		t.tier.deleted = make(map[ids.LedgerID]bool)
	}
	t.tier.deleted[id] = true
}

// unrecorded reports whether ledger id's record, read again, names none
// of segs, so that they may be deleted. When the record cannot be read it
// answers false: objects kept that nothing names are collected by
// tiering.CollectGarbage, objects deleted that the record names are lost
// for good.
func (t *topic) unrecorded(id ids.LedgerID, segs []metadata.Segment) bool {
	ctx, cancel := context.WithTimeout(context.Background(), t.n.cfg.MetaTimeout)
	defer cancel()
	l, err := t.n.meta.GetLedger(ctx, id)
	if errors.Is(err, metadata.ErrNotFound) {
		return true
	}
	if err != nil {
		t.log.Warn("offload record unreadable: keeping its new objects", "ledger", id, "err", err)
		return false
	}
	if l.Offload == nil {
		return true
	}
	for _, s := range l.Offload.Segments {
		for _, mine := range segs {
			if s.Key == mine.Key {
				return false
			}
		}
	}
	return true
}

// deleteSegments deletes objects, best effort (leftovers are named by no
// metadata; tiering.CollectGarbage finds them).
func (t *topic) deleteSegments(segs []metadata.Segment) {
	ctx, cancel := context.WithTimeout(context.Background(), t.n.cfg.MetaTimeout)
	defer cancel()
	for _, s := range segs {
		if err := t.n.tier.store.Delete(ctx, s.Key); err != nil {
			t.log.Warn("deleting segment object", "key", s.Key, "err", err)
		}
	}
}

// collectGarbage deletes the topic's segment objects that no ledger
// record of its managed ledger names and that are older than GCMinAge:
// leftovers of failed offloads whose cleanup could not run. Best effort;
// under tier.mu, so no offload of this topic runs meanwhile.
func (t *topic) collectGarbage(ctx context.Context) {
	t.mu.Lock()
	ls := append([]metadata.LedgerInfo(nil), t.mu.ml.Ledgers...)
	t.mu.Unlock()
	named := map[string]bool{}
	for _, li := range ls {
		l, err := t.n.meta.GetLedger(ctx, li.ID)
		if errors.Is(err, metadata.ErrNotFound) {
			continue
		}
		if err != nil {
			t.log.Warn("offload garbage collection: reading ledger", "ledger", li.ID, "err", err)
			return
		}
		if l.Offload != nil {
			for _, s := range l.Offload.Segments {
				named[s.Key] = true
			}
		}
	}
	cutoff := time.Now().Add(-t.n.tier.cfg.GCMinAge)
	gone, err := tiering.CollectGarbage(ctx, t.n.tier.store, t.name, func(k string) bool { return named[k] }, cutoff)
	if err != nil {
		t.log.Warn("offload garbage collection", "err", err)
		return
	}
	t.tier.lastGC = time.Now()
	if len(gone) > 0 {
		t.log.Info("deleted segment objects no ledger names", "objects", len(gone))
	}
}

// TriggerOffload offloads every closed ledger of the topic that is not
// offloaded yet, now, whatever the policy; it answers how many it
// offloaded. Deletion from the bookies still waits for the deletion lag.
func (n *Node) TriggerOffload(ctx context.Context, req *servingpb.TriggerOffloadRequest) (*servingpb.TriggerOffloadResponse, error) {
	if _, err := canonical(req.GetTopic()); err != nil {
		return nil, err
	}
	if n.tier == nil {
		return nil, errcode.New(errcode.Unimplemented, "this node has no object store configured")
	}
	t, err := n.topicFor(ctx, req.GetTopic(), false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(t.ctx, cancel)
	defer stop()
	count, err := t.offloadPass(ctx, true)
	if err != nil {
		return nil, unavailable("offload", err)
	}
	return &servingpb.TriggerOffloadResponse{LedgersOffloaded: uint32(count)}, nil
}
