package serving

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	topicname "github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// consumer is one connected consumer stream. permits and unacked are
// guarded by the topic's mu.
type consumer struct {
	name    string
	s       *subscription
	permits int64
	unacked int
	out     chan *servingpb.ConsumeResponse
	// queueFull is set when the dispatcher found out nearly full; the
	// sender clears it when it drains a response and has the dispatcher
	// look at what waited for room (queueDrained).
	queueFull atomic.Bool
	// endSent is set once the consumer was told of the end of a terminated
	// topic (terminate.go).
	endSent bool
	// readCompacted: the consumer reads the compaction first
	// (compactedread.go).
	readCompacted bool
	done          chan struct{}
	once          sync.Once
	err           error
	// epoch is the subscription's cursor epoch when c attached: its
	// stream's Subscribed tells it (cursorepoch.go).
	epoch uint64
}

func (c *consumer) fail(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.done)
	})
}

// ended reports whether c failed: its stream is ending.
func (c *consumer) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *consumer) hasRoomLocked(maxUnacked int) bool {
	if c.permits <= 0 || c.unacked >= maxUnacked {
		return false
	}
	select {
	case <-c.done: // failed, its stream ending: what it took would wait for its detach
		return false
	default:
	}
	if len(c.out) >= cap(c.out)-1 {
		c.queueFull.Store(true)
		return false
	}
	return true
}

// queueDrained runs when c's sender took a response from a queue the
// dispatcher found full: a key_shared subscription then rescans what waits,
// since no ack or flow may come to make it (the application may be
// waiting for those very messages).
func (t *topic) queueDrained(c *consumer) {
	t.mu.Lock()
	c.s.ks.rescan = c.s.keyShared()
	t.mu.Unlock()
}

// send queues r; the dispatcher checked for room under the topic's mu, and
// only it and seeks (which leave a slot) send, so this never drops.
func (c *consumer) send(r *servingpb.ConsumeResponse) {
	select {
	case c.out <- r:
	default:
		c.fail(errcode.New(errcode.TooManyInFlight, "consumer %s: response queue full", c.name))
	}
}

// checkSubscribe refuses a subscribe request that names no valid
// subscription type or name, before anything (the topic, on first use) is
// created for it.
func checkSubscribe(req *servingpb.Subscribe) error {
	switch req.GetType() {
	case servingpb.SubscriptionType_EXCLUSIVE, servingpb.SubscriptionType_SHARED, servingpb.SubscriptionType_FAILOVER,
		servingpb.SubscriptionType_KEY_SHARED:
	default:
		return errcode.New(errcode.InvalidSubscription, "unknown subscription type %d", req.GetType())
	}
	if req.GetReadCompacted() && (req.GetNonDurable() ||
		(req.GetType() != servingpb.SubscriptionType_EXCLUSIVE && req.GetType() != servingpb.SubscriptionType_FAILOVER)) {
		return errcode.New(errcode.InvalidArgument, "read compacted needs a durable exclusive or failover subscription (readers read compacted on their own)")
	}
	if req.GetNonDurable() && req.GetSubscription() == "" {
		return nil // named by subscribe
	}
	return topicname.CheckSubscription(req.GetSubscription())
}

// subscribe attaches a consumer, creating the subscription when needed.
func (t *topic) subscribe(ctx context.Context, req *servingpb.Subscribe) (*consumer, error) {
	if err := checkSubscribe(req); err != nil {
		return nil, err
	}
	name := req.GetSubscription()
	if req.GetNonDurable() && name == "" {
		name = "reader-" + uuid.NewString()
	}
	if !req.GetNonDurable() {
		if _, err := t.ensureDurable(ctx, name, req.GetType(), req.GetInitialPosition()); err != nil {
			return nil, err
		}
	}
	start, err := t.startPosition(ctx, req)
	if err != nil {
		return nil, err
	}
	return t.attach(name, req, start)
}

// ensureDurable stores the cursor of a new durable subscription before any
// consumer attaches, so that it survives a takeover from the first moment.
// It reports whether it created the subscription (false: it existed, or a
// concurrent call created it first).
func (t *topic) ensureDurable(ctx context.Context, name string, typ servingpb.SubscriptionType, at servingpb.InitialPosition) (bool, error) {
	t.mu.Lock()
	if err := t.servingErrLocked(); err != nil {
		t.mu.Unlock()
		return false, err
	}
	if _, ok := t.mu.subs[name]; ok {
		t.mu.Unlock()
		return false, nil
	}
	md := t.mu.lastPos
	if at == servingpb.InitialPosition_EARLIEST {
		md = t.firstPositionLocked()
	}
	s := newSubscription(t, name, typ, true, md)
	rec := s.cursorRecordLocked()
	t.mu.Unlock()
	if err := t.n.meta.PutCursor(ctx, rec); err != nil {
		return false, metaConflict("creating cursor", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.mu.subs[name]; ok {
		return false, nil
	}
	s.version = rec.Version
	t.mu.subs[name] = s
	if t.mu.state == topicServing {
		s.start()
	}
	return true, nil
}

// startPosition answers the mark-delete position of a non-durable
// subscription (nil for durable ones, which keep their cursor).
func (t *topic) startPosition(ctx context.Context, req *servingpb.Subscribe) (*ids.Position, error) {
	if !req.GetNonDurable() {
		return nil, nil
	}
	if id := req.GetStartMessageId(); id != nil {
		p := prevPosition(ids.Position{Ledger: ids.LedgerID(id.GetLedger()), Entry: ids.EntryID(id.GetEntry())})
		return &p, nil
	}
	if ts := req.GetStartTimeUnixNano(); ts != 0 {
		p, err := t.positionAt(ctx, ts)
		if err != nil {
			return nil, err
		}
		return &p, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.mu.lastPos
	if req.GetInitialPosition() == servingpb.InitialPosition_EARLIEST {
		p = t.firstPositionLocked()
	}
	return &p, nil
}

// positionAt answers the mark-delete position just before the first entry
// published at or after ts (the end of the topic when every entry is
// older). Publish times increase strictly along a topic, so ledgers are
// skipped by their recorded range and the entry is found by a binary search
// of reads. Offloaded ledgers are searched by the node's TimeFinder (the
// tiering tier's time index), and by reads when their object is damaged;
// without a TimeFinder they are Unimplemented.
func (t *topic) positionAt(ctx context.Context, ts int64) (ids.Position, error) {
	t.mu.Lock()
	ls := append([]metadata.LedgerInfo(nil), t.mu.ml.Ledgers...)
	for i := range ls {
		ls[i].Entries = t.entriesLocked(i)
	}
	last := t.mu.lastPos
	t.mu.Unlock()
	for _, li := range ls {
		if li.Entries == 0 || (li.Closed && li.LastPublishTime != 0 && li.LastPublishTime < ts) {
			continue
		}
		if li.Offloaded && t.n.times != nil {
			p, err := t.n.times.PositionAt(ctx, t.name, ts)
			if err == nil {
				return prevPosition(p), nil
			}
			// EntryNotFound: the time index knows the answer is in a
			// ledger it has not offloaded (its view of the ledgers
			// differs). A damaged or missing object: reads of the ledger
			// fall back to its bookie copy while the deletion lag keeps
			// it, and so does the search. Either way, search here.
			if errcode.CodeOf(err) != errcode.EntryNotFound && !damagedObject(err) {
				return ids.Position{}, err
			}
		}
		e, found, err := t.searchLedger(ctx, li, ts)
		if err != nil {
			return ids.Position{}, err
		}
		if found {
			return prevPosition(ids.Position{Ledger: li.ID, Entry: e}), nil
		}
	}
	return last, nil
}

// searchLedger finds the first entry of li published at or after ts.
func (t *topic) searchLedger(ctx context.Context, li metadata.LedgerInfo, ts int64) (ids.EntryID, bool, error) {
	lo, hi := ids.EntryID(0), ids.EntryID(li.Entries)
	for lo < hi {
		mid := lo + (hi-lo)/2
		es, err := t.readEntries(ctx, li.ID, mid, mid)
		if err != nil {
			return 0, false, unavailable("reading for a time seek", err)
		}
		if len(es) == 0 {
			return 0, false, errcode.New(errcode.EntryNotFound, "entry %d:%d", li.ID, mid)
		}
		if es[0].batch.PublishTime >= ts {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, lo < ids.EntryID(li.Entries), nil
}

func (t *topic) attach(name string, req *servingpb.Subscribe, start *ids.Position) (*consumer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.servingErrLocked(); err != nil {
		return nil, err
	}
	s := t.mu.subs[name]
	if s == nil {
		s = newSubscription(t, name, req.GetType(), false, *start)
		t.mu.subs[name] = s
		s.start()
	}
	if s.deleting {
		return nil, errcode.New(errcode.Unavailable, "subscription %s of %s is being deleted", name, t.name)
	}
	if len(s.consumers) > 0 && s.typ != req.GetType() {
		return nil, errcode.New(errcode.ConsumerBusy, "subscription %s is %s", name, subTypeString(s.typ))
	}
	if s.typ == servingpb.SubscriptionType_EXCLUSIVE && len(s.consumers) > 0 {
		return nil, errcode.New(errcode.ConsumerBusy, "exclusive subscription %s already has a consumer", name)
	}
	s.setTypeLocked(req.GetType())
	cname := req.GetConsumerName()
	if cname == "" {
		cname = fmt.Sprintf("%s-%s", t.n.cfg.NodeID, uuid.NewString()[:8])
	}
	c := &consumer{name: cname, s: s, out: make(chan *servingpb.ConsumeResponse, t.n.cfg.ConsumerQueue), done: make(chan struct{}),
		readCompacted: req.GetReadCompacted(), epoch: s.epoch}
	s.consumers = append(s.consumers, c)
	s.consumersChangedLocked()
	return c, nil
}

// detach removes c; its unacknowledged entries go to the other consumers.
func (t *topic) detach(c *consumer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := c.s
	for i, x := range s.consumers {
		if x == c {
			s.consumers = append(s.consumers[:i], s.consumers[i+1:]...)
			break
		}
	}
	s.unassignLocked(c, nil)
	s.consumersChangedLocked()
	if !s.durable && len(s.consumers) == 0 && t.mu.subs[s.name] == s {
		delete(t.mu.subs, s.name)
		s.stopLocked()
	}
}

func (t *topic) flow(c *consumer, permits uint32) {
	t.mu.Lock()
	c.permits += int64(permits)
	c.s.ks.rescan = c.s.keyShared()
	t.mu.Unlock()
	c.s.signal()
}

func (t *topic) ack(c *consumer, a *servingpb.Ack) error {
	msgIDs := make([]ids.MessageID, len(a.GetIds()))
	for i, id := range a.GetIds() {
		msgIDs[i] = fromPB(id)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.staleAckLocked(c, a) {
		return nil
	}
	return c.s.ackLocked(msgIDs, a.GetCumulative(), !c.ended())
}

func (t *topic) nack(c *consumer, n *servingpb.Nack) {
	nacked := make([]ids.MessageID, 0, len(n.GetIds()))
	for _, id := range n.GetIds() {
		nacked = append(nacked, fromPB(id))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c.s.unassignLocked(c, nacked)
}

// hasEntryAfter reports whether the topic holds an entry after after's
// entry, or after c's subscription's mark-delete position when after is nil.
// Positions are compared in the topic's ledger order, which ledger ids do
// not follow (each node allocates ids from its own range).
func (t *topic) hasEntryAfter(c *consumer, after *servingpb.MessageId) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := c.s.acks.markDelete
	if after != nil {
		p = fromPB(after).Position()
	}
	_, ok := t.orderLocked().next(p)
	return ok
}

// seek moves the subscription of c and answers SeekDone on c's stream with
// the position of the first entry that will be delivered.
func (t *topic) seek(ctx context.Context, c *consumer, sk *servingpb.Seek) error {
	var md ids.Position
	switch to := sk.GetTo().(type) {
	case *servingpb.Seek_MessageId:
		// Resolved below, under the lock, against the ledgers then.
		if err := t.checkIDTopic(ctx, fromPB(to.MessageId)); err != nil {
			return err
		}
	case *servingpb.Seek_TimeUnixNano:
		p, err := t.positionAt(ctx, to.TimeUnixNano)
		if err != nil {
			return err
		}
		md = p
	case *servingpb.Seek_Position:
		t.mu.Lock()
		md = t.mu.lastPos
		if to.Position == servingpb.InitialPosition_EARLIEST {
			md = t.firstPositionLocked()
		}
		t.mu.Unlock()
	default:
		return errcode.New(errcode.InvalidArgument, "seek needs a target")
	}
	t.cursorMu.Lock()
	defer t.cursorMu.Unlock()
	t.mu.Lock()
	if to, ok := sk.GetTo().(*servingpb.Seek_MessageId); ok {
		p, err := t.idTargetLocked(fromPB(to.MessageId))
		if err != nil {
			t.mu.Unlock()
			return err
		}
		md = p
	}
	err := t.servingErrLocked()
	t.mu.Unlock()
	if err != nil {
		return err
	}
	// Stored before it is applied and answered, as Pulsar's reset: a seek
	// answered and then lost with its owner would not rewind (or skip) at
	// all. A failed write changes nothing.
	epoch, err := t.storeMovedCursor(ctx, c.s, md)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// Stored, so done: applied even if the topic stopped being served
	// meanwhile, so that an unload's flush (after cursorMu) stores the
	// moved cursor again rather than the one from before it.
	c.s.resetLocked(md, epoch)
	c.s.disconnectLocked(c, "was moved by a seek")
	next, ok := t.orderLocked().next(md)
	if !ok {
		next = ids.Position{Ledger: md.Ledger, Entry: md.Entry + 1}
	}
	// Queued under the lock the reset took, so that no message of the new
	// position can be queued before it: the client drops what it receives
	// before SeekDone (it belongs to the old position), and the node
	// counts what it sent as delivered.
	c.send(&servingpb.ConsumeResponse{Kind: &servingpb.ConsumeResponse_SeekDone{SeekDone: &servingpb.SeekDone{
		Position: &servingpb.MessageId{Ledger: uint64(next.Ledger), Entry: int64(next.Entry)}, CursorEpoch: epoch}}})
	return nil
}

func fromPB(id *servingpb.MessageId) ids.MessageID {
	return ids.MessageID{Ledger: ids.LedgerID(id.GetLedger()), Entry: ids.EntryID(id.GetEntry()), Batch: id.GetBatch()}
}

// storeMovedCursor stores s's cursor moved to markDelete, with no message
// acknowledged past it and at the next epoch, before the move is applied
// (needs cursorMu, not mu), and answers that epoch, for the caller to
// apply the move at (cursorepoch.go). Nothing is stored for a non-durable
// subscription. On success s's version is the stored one; a lost
// compare-and-swap drops the topic, as for a flush.
func (t *topic) storeMovedCursor(ctx context.Context, s *subscription, markDelete ids.Position) (uint64, error) {
	t.mu.Lock()
	epoch := nextEpoch(s.epoch)
	rec := &metadata.Cursor{
		Topic: t.name, Subscription: s.name, Type: subTypeString(s.typ),
		MarkDelete: markDelete, Epoch: epoch, UpdatedAt: time.Now().UnixNano(), Version: s.version,
	}
	t.mu.Unlock()
	if !s.durable {
		return epoch, nil
	}
	if err := t.n.meta.PutCursor(ctx, rec); err != nil {
		err = metaConflict("storing the moved cursor", err)
		if errcode.CodeOf(err) == errcode.TopicFenced {
			t.dropOnError("persisting cursor", err)
		}
		return 0, err
	}
	t.mu.Lock()
	s.version = rec.Version
	t.mu.Unlock()
	return epoch, nil
}

// flushCursors writes every dirty durable cursor. A cursor changed by
// someone else (lost compare-and-swap) means another node owns the topic.
func (t *topic) flushCursors(ctx context.Context) {
	t.cursorMu.Lock()
	defer t.cursorMu.Unlock()
	var recs []*metadata.Cursor
	var subs []*subscription
	t.mu.Lock()
	for _, s := range t.mu.subs {
		if s.durable && s.dirty {
			recs = append(recs, s.cursorRecordLocked())
			subs = append(subs, s)
		}
		t.n.m.backlog.WithLabelValues(t.name, s.name).Set(float64(t.backlogLocked(s.acks)))
		t.n.m.backlogBytes.WithLabelValues(t.name, s.name).Set(float64(t.backlogBytesLocked(s.acks)))
		t.n.m.delayed.WithLabelValues(t.name, s.name).Set(float64(len(s.delayed)))
		waiting := 0
		if s.keyShared() {
			waiting = len(s.redeliver)
		}
		t.n.m.keySharedWaiting.WithLabelValues(t.name, s.name).Set(float64(waiting))
	}
	t.mu.Unlock()
	for i, rec := range recs {
		err := t.n.meta.PutCursor(ctx, rec)
		t.mu.Lock()
		if err == nil {
			subs[i].version = rec.Version
		} else {
			subs[i].dirty = true
		}
		t.mu.Unlock()
		if err != nil {
			t.log.Warn("persisting cursor", "subscription", rec.Subscription, "err", err)
			if errcode.CodeOf(metaConflict("", err)) == errcode.TopicFenced {
				t.dropOnError("persisting cursor", metaConflict("cursor", err))
				return
			}
		}
	}
}
