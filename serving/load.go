package serving

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// load takes the topic over: acquire the ownership key, fence and recover the
// previous owner's last ledger, rebuild deduplication state from it, open a
// new ledger, compare-and-swap the managed ledger, load the cursors, serve.
// Runs on a goroutine owned by the node.
func (t *topic) load() {
	defer t.n.wg.Done()
	ctx, cancel := context.WithTimeout(t.ctx, t.n.cfg.LoadTimeout)
	defer cancel()
	acquired, err := t.loadSteps(ctx)
	if err != nil {
		t.log.Warn("topic load failed", "err", err)
		t.loadErr = err
		t.mu.Lock()
		t.mu.state = topicDropped
		w := t.mu.w
		t.mu.Unlock()
		t.cancel()
		if w != nil {
			go func() { _ = w.Close(context.Background(), nil) }()
		}
		if acquired {
			t.n.release(t.owned)
		}
		t.n.forget(t)
		t.markGone()
		close(t.ready)
		return
	}
	t.mu.Lock()
	t.mu.state = topicServing
	for _, s := range t.mu.subs {
		s.start()
	}
	t.mu.Unlock()
	t.wg.Add(1)
	go t.run()
	t.n.m.takeovers.Inc()
	t.log.Info("topic loaded", "ledger", t.currentLedger())
	close(t.ready)
}

func (t *topic) currentLedger() ids.LedgerID {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.w == nil {
		return 0
	}
	return t.mu.w.ID()
}

func (t *topic) loadSteps(ctx context.Context) (acquired bool, err error) {
	n := t.n
	if err := t.acquire(ctx); err != nil {
		return false, err
	}
	pol, err := n.policyFor(ctx, t.name, t.ns)
	if err != nil {
		return true, err
	}
	t.policy.Store(&pol)
	ml, err := n.meta.GetManagedLedger(ctx, t.name)
	if errors.Is(err, metadata.ErrNotFound) {
		ml, err = &metadata.ManagedLedger{Topic: t.name}, nil
	}
	if err != nil {
		return true, unavailable("reading managed ledger", err)
	}
	earlier := earlierFrom(ml)
	dedup, lastPub, err := t.recoverLast(ctx, ml)
	if err != nil {
		return true, err
	}
	o := t.createOptions()
	for _, li := range ml.Ledgers {
		o.After = max(o.After, li.ID) // the previous owners' too
	}
	w, err := n.ledgers.Create(ctx, o)
	if err != nil {
		return true, unavailable("creating ledger", err)
	}
	t.mu.Lock()
	t.mu.w = w // closed by load's failure path from here on
	t.mu.Unlock()
	next := cloneML(ml)
	next.Ledgers = append(next.Ledgers, metadata.LedgerInfo{ID: w.ID(), CreatedAt: time.Now().UnixNano()})
	next.Producers = persistedSeqs(dedup)
	if err := n.meta.PutManagedLedger(ctx, next); err != nil {
		return true, metaConflict("storing managed ledger", err)
	}
	return true, t.install(ctx, next, w, dedup, lastPub, earlier)
}

// earlierFrom is where to start reading the earlier owners' entries back
// for receipts: the end of the last ledger, unless recoverLast is about to
// read that one through (then the end of the one before).
func earlierFrom(ml *metadata.ManagedLedger) earlierReceipts {
	if len(ml.Ledgers) == 0 {
		return earlierReceipts{}
	}
	li := ml.Ledgers[len(ml.Ledgers)-1]
	e := earlierReceipts{ledger: li.ID, next: ids.NoEntry, budget: maxEarlierEntries}
	if li.Closed {
		e.next = ids.EntryID(li.Entries - 1)
	}
	return e
}

// acquire claims the ownership key for this node's session.
func (t *topic) acquire(ctx context.Context) error {
	n := t.n
	sess := n.session()
	if sess == nil {
		return errcode.New(errcode.ServiceNotReady, "node %s has no session", n.cfg.NodeID)
	}
	cur, ok, err := n.meta.AcquireOwnership(ctx, sess, n.ownership(t.name))
	if err != nil {
		return unavailable("acquiring ownership", err)
	}
	if ok {
		t.owned = cur
		return nil
	}
	if cur.NodeID != n.cfg.NodeID {
		return &errcode.Error{Code: errcode.NotOwner, Message: "topic " + t.name + " is owned by " + cur.NodeID, Redirect: cur.GRPCAddr}
	}
	return errcode.New(errcode.ServiceNotReady, "a previous session of node %s still owns %s", n.cfg.NodeID, t.name)
}

// install sets the loaded state: managed ledger, writer, dedup (and where
// to read back for more receipts), cursors.
func (t *topic) install(ctx context.Context, ml *metadata.ManagedLedger, w Writer, dedup map[string]*dedupState, lastPub int64, earlier earlierReceipts) error {
	cursors, err := t.n.meta.ListCursors(ctx, t.name)
	if err != nil {
		return unavailable("listing cursors", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.ml = ml
	t.mu.cur = ledgerProgress{created: time.Now(), lastPosition: ids.Position{Ledger: w.ID(), Entry: ids.NoEntry}}
	t.mu.dedup = dedup
	t.mu.earlier = earlier
	t.mu.lastPub = lastPub
	t.mu.lastPos = t.lastEntryLocked()
	for i := range cursors {
		c := &cursors[i]
		acks, err := decodeRanges(c.MarkDelete, c.AckedRanges)
		if err != nil {
			t.log.Warn("cursor acked ranges unreadable; redelivering them", "subscription", c.Subscription, "err", err)
			acks = newAckState(c.MarkDelete)
		}
		s := newSubscription(t, c.Subscription, subTypeFromString(c.Type), true, c.MarkDelete)
		s.acks = acks
		s.acks.advance(t.orderLocked())
		batch, err := decodeBatchAcks(c.BatchAcks)
		if err != nil {
			t.log.Warn("cursor batch acks unreadable; redelivering those batches whole", "subscription", c.Subscription, "err", err)
		}
		s.loadBatchAcksLocked(batch)
		s.version = c.Version
		s.epoch = loadedEpoch(c.Epoch)
		s.readPos = s.acks.markDelete
		t.mu.subs[s.name] = s
	}
	return nil
}

// lastEntryLocked is the position of the topic's last durable entry, or
// {current ledger, NoEntry} when the topic has none.
func (t *topic) lastEntryLocked() ids.Position {
	ls := t.mu.ml.Ledgers
	for i := len(ls) - 1; i >= 0; i-- {
		if e := t.entriesLocked(i); e > 0 {
			return ids.Position{Ledger: ls[i].ID, Entry: ids.EntryID(e - 1)}
		}
	}
	if len(ls) == 0 {
		return ids.Position{Entry: ids.NoEntry}
	}
	return ids.Position{Ledger: ls[len(ls)-1].ID, Entry: ids.NoEntry}
}

// recoverLast fences, recovers and closes the previous owner's last ledger
// when the managed ledger does not record it closed, and rebuilds the
// deduplication state from the managed ledger's snapshot plus the entries
// of that ledger. A ledger recorded closed (by a roll, or by the graceful
// unload of the previous owner, unload.go) has its producers' sequence ids
// in the snapshot already, and is neither recovered nor read.
func (t *topic) recoverLast(ctx context.Context, ml *metadata.ManagedLedger) (map[string]*dedupState, int64, error) {
	dedup := make(map[string]*dedupState, len(ml.Producers))
	for name, seq := range ml.Producers {
		dedup[name] = &dedupState{pushed: seq, persisted: seq, left: time.Now()}
	}
	var lastPub int64
	if len(ml.Ledgers) == 0 {
		return dedup, lastPub, nil
	}
	li := &ml.Ledgers[len(ml.Ledgers)-1]
	lastPub = li.LastPublishTime
	if li.Closed {
		return dedup, lastPub, nil
	}
	t.n.m.loadRecoveries.Inc()
	l, err := t.n.ledgers.Recover(ctx, li.ID, func(l *metadata.Ledger) { l.Topic = t.name })
	if err != nil {
		return nil, 0, unavailable(fmt.Sprintf("recovering ledger %d", li.ID), err)
	}
	li.Entries, li.Closed, li.Bytes = int64(l.LastEntry)+1, true, 0
	if err := t.replayForDedup(ctx, l, li, dedup); err != nil {
		return nil, 0, err
	}
	t.annotateRecovered(ctx, li)
	return dedup, max(lastPub, li.LastPublishTime), nil
}

// annotateRecovered records what the replay learned (bytes, publish-time
// range) in the recovered ledger's metadata, for retention and offload. Best
// effort: a lost race only leaves the fields unset.
func (t *topic) annotateRecovered(ctx context.Context, li *metadata.LedgerInfo) {
	l, err := t.n.meta.GetLedger(ctx, li.ID)
	if err != nil || l.FirstPublishTime != 0 {
		return
	}
	l.Bytes, l.FirstPublishTime, l.LastPublishTime, l.Topic = li.Bytes, li.FirstPublishTime, li.LastPublishTime, t.name
	if err := t.n.meta.UpdateLedger(ctx, l); err != nil {
		t.log.Debug("annotating recovered ledger", "ledger", li.ID, "err", err)
	}
}

// replayForDedup reads every entry of the recovered ledger l and records the
// highest sequence id (and recent receipts) of each producer.
func (t *topic) replayForDedup(ctx context.Context, l *metadata.Ledger, li *metadata.LedgerInfo, dedup map[string]*dedupState) error {
	step := ids.EntryID(t.n.cfg.ReadAheadEntries)
	for first := ids.EntryID(0); first <= l.LastEntry; {
		last := min(first+step-1, l.LastEntry)
		es, err := t.n.ledgers.Read(ctx, l, first, last)
		if err == nil && len(es) == 0 {
			err = errcode.New(errcode.EntryNotFound, "empty read")
		}
		if errors.Is(err, ledger.ErrEntryDamaged) {
			// Lost on every copy: waiting cannot bring it back, and
			// failing here left the whole topic unloadable, its good
			// entries and new publishes included. Its messages' sequence
			// ids are not known for deduplication; reads of it fail.
			t.log.Error("entry of the recovered ledger is damaged on every bookie: left out of deduplication",
				"ledger", l.ID, "entry", first, "err", err)
			first++
			continue
		}
		if err != nil {
			return unavailable(fmt.Sprintf("reading ledger %d", l.ID), err)
		}
		first = es[len(es)-1].ID + 1
		t.n.m.loadReplayed.Add(float64(len(es)))
		for _, e := range es {
			b, err := entry.Decode(e.Payload)
			if err != nil {
				return err
			}
			if len(b.Messages) == 0 {
				continue
			}
			d := dedupFor(dedup, b.ProducerName)
			r := receipt{first: b.Messages[0].SequenceID, last: b.Messages[len(b.Messages)-1].SequenceID,
				pos: ids.Position{Ledger: l.ID, Entry: e.ID}, publishTime: b.PublishTime}
			d.persist(r)
			li.Bytes += uint64(len(e.Payload))
			if li.FirstPublishTime == 0 {
				li.FirstPublishTime = b.PublishTime
			}
			li.LastPublishTime = max(li.LastPublishTime, b.PublishTime)
		}
	}
	return nil
}

func (t *topic) createOptions() CreateOptions {
	c, p := t.n.cfg, t.pol()
	o := CreateOptions{Ensemble: p.Ensemble, WriteQuorum: p.WriteQuorum, AckQuorum: p.AckQuorum, Topic: t.name}
	if o.Ensemble == 0 {
		o.Ensemble = c.Ensemble
	}
	if o.WriteQuorum == 0 {
		o.WriteQuorum = min(c.WriteQuorum, o.Ensemble)
	}
	if o.AckQuorum == 0 {
		o.AckQuorum = min(c.AckQuorum, o.WriteQuorum)
	}
	return o
}

func cloneML(ml *metadata.ManagedLedger) *metadata.ManagedLedger {
	c := *ml
	c.Ledgers = append([]metadata.LedgerInfo(nil), ml.Ledgers...)
	c.Producers = make(map[string]int64, len(ml.Producers))
	for k, v := range ml.Producers {
		c.Producers[k] = v
	}
	return &c
}

// unavailable wraps a dependency failure in a retriable code unless it
// already carries a code.
func unavailable(what string, err error) error {
	var e *errcode.Error
	if errors.As(err, &e) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, errcode.New(errcode.Timeout, "%v", err))
	}
	return fmt.Errorf("%s: %w", what, errcode.New(errcode.Unavailable, "%v", err))
}

// metaConflict turns a lost compare-and-swap into TopicFenced: someone else
// changed the topic's metadata, so this node must stop serving it.
func metaConflict(what string, err error) error {
	if errors.Is(err, metadata.ErrBadVersion) {
		return fmt.Errorf("%s: %w", what, errcode.New(errcode.TopicFenced, "managed ledger changed by another owner"))
	}
	return unavailable(what, err)
}
