package serving

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	topicname "github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// subscription is a named cursor on a topic and the consumers attached to
// it. Every field but the immutable ones is guarded by the topic's mu.
type subscription struct {
	t       *topic
	name    string
	typ     servingpb.SubscriptionType
	durable bool

	acks *ackState
	// readFailures counts the catch-up reads failed in a row, for their
	// backoff; only the dispatch goroutine uses it.
	readFailures int
	// readPos is the last entry taken from the log for dispatch; the next
	// one is order.next(readPos).
	readPos   ids.Position
	consumers []*consumer
	rr        int
	partition int       // the topic's partition index (0 when not partitioned), for failover
	active    *consumer // the one a failover subscription delivers to (chooseActiveLocked)
	ks        keyShared // a key_shared subscription's dispatch state (keyshared.go)
	outbox    *outbox   // while set, sendLocked gathers responses here
	// delayed holds the entries a shared or key_shared subscription holds
	// back until their delivery time (delay.go).
	delayed    delayHeap
	delayTimer *time.Timer
	gen        uint64 // bumped by resetLocked: reads started before it are stale
	// pending are entries delivered (or awaiting redelivery: owner nil)
	// and not yet fully acknowledged.
	pending map[ids.Position]*pendingEntry
	// batchAcks holds, for the entries the loaded cursor recorded
	// acknowledged in part, which of their messages were: a pending
	// entry made of one starts with those marked (batchacks.go). Kept
	// until the entry is acknowledged whole or the cursor moves, since
	// a delayed entry stops being pending until it is due.
	batchAcks map[ids.Position][]bool
	// redeliver lists, in log order, the pending entries given back (and,
	// on a key_shared subscription, those with messages waiting for their
	// key's consumer).
	redeliver []ids.Position
	readAhead map[ids.Position]*cachedEntry
	// early are acks of messages not read yet (earlyacks.go).
	early earlyAcks
	// cv is the compaction being read instead of the log
	// (compactedread.go).
	cv *compactedView
	// cvDone is the compacted ledger this subscription has been sent in
	// full, so that one still at the topic's start reads it once.
	cvDone ids.LedgerID
	// oldest is the first unacknowledged entry as last measured
	// (backlogage.go).
	oldest  oldestUnacked
	dirty   bool
	version int64 // of the stored cursor
	// epoch is the cursor's epoch (cursorepoch.go): never 0, changed by
	// every move that acks made before it must not undo.
	epoch uint64
	// deleting is set while a deletion of s deletes its stored cursor: no
	// consumer attaches meanwhile, and s stays until the cursor is gone.
	deleting bool

	running bool
	wake    chan struct{}
	// moved is signalled when the cursor is reset (a seek, an admin
	// reset): it ends a failed read's backoff, which other wake-ups
	// (publishes, flows, acks) must not.
	moved  chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	// sentMsgs and sentBytes count what sendLocked sent since the
	// dispatcher last paced (dispatchrate.go); pacer is the dispatcher's.
	sentMsgs, sentBytes atomic.Int64
	pacer               pacer
}

type pendingEntry struct {
	e      *cachedEntry
	owner  *consumer // of the whole entry; unused on key_shared subscriptions
	acked  []bool
	nAcked int
	// redeliveries counts, per message, the times it was given back: by
	// its own nack or ack timeout, or by a consumer that left holding it.
	// Counted per message, not per entry, because a dead-letter policy
	// reads it as that message's failures: a batch's healthy messages,
	// redelivered with a sibling that failed, have not failed. Nil until
	// a message is given back.
	redeliveries []uint32
	keyed        *keyedEntry // per-message owners, on key_shared subscriptions only
}

func (pe *pendingEntry) redeliveryCount(i int) uint32 {
	if pe.redeliveries == nil {
		return 0
	}
	return pe.redeliveries[i]
}

// givenBack counts a redelivery of message i.
func (pe *pendingEntry) givenBack(i int) {
	if pe.redeliveries == nil {
		pe.redeliveries = make([]uint32, len(pe.acked))
	}
	pe.redeliveries[i]++
}

func newSubscription(t *topic, name string, typ servingpb.SubscriptionType, durable bool, markDelete ids.Position) *subscription {
	s := &subscription{t: t, name: name, typ: typ, durable: durable, acks: newAckState(markDelete), readPos: markDelete,
		pending: make(map[ids.Position]*pendingEntry), readAhead: make(map[ids.Position]*cachedEntry),
		wake: make(chan struct{}, 1), moved: make(chan struct{}, 1), ks: newKeyShared(typ), epoch: newEpoch()}
	if n, err := topicname.Parse(t.name); err == nil {
		if i, _ := n.PartitionIndex(); i > 0 {
			s.partition = i
		}
	}
	s.ctx, s.cancel = context.WithCancel(t.ctx)
	return s
}

func subTypeString(t servingpb.SubscriptionType) string {
	switch t {
	case servingpb.SubscriptionType_SHARED:
		return "shared"
	case servingpb.SubscriptionType_FAILOVER:
		return "failover"
	case servingpb.SubscriptionType_KEY_SHARED:
		return "key_shared"
	}
	return "exclusive"
}

func subTypeFromString(s string) servingpb.SubscriptionType {
	switch s {
	case "shared":
		return servingpb.SubscriptionType_SHARED
	case "failover":
		return servingpb.SubscriptionType_FAILOVER
	case "key_shared":
		return servingpb.SubscriptionType_KEY_SHARED
	}
	return servingpb.SubscriptionType_EXCLUSIVE
}

// start runs the dispatcher; needs t.mu.
func (s *subscription) start() {
	if s.running {
		return
	}
	s.running = true
	s.t.wg.Add(1)
	go s.dispatchLoop()
}

// stopLocked stops the dispatcher of a removed subscription.
func (s *subscription) stopLocked() {
	s.cancel()
	if s.delayTimer != nil {
		s.delayTimer.Stop()
	}
}

func (s *subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscription) dispatchLoop() {
	defer s.t.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		}
		for s.ctx.Err() == nil && s.dispatchOnce() {
			if !s.pace() {
				return
			}
		}
	}
}

// dispatchOnce sends at most one entry to a consumer with room; it answers
// whether it made progress (and should be called again).
func (s *subscription) dispatchOnce() bool {
	t := s.t
	t.mu.Lock()
	if t.mu.state != topicServing {
		t.mu.Unlock()
		return false
	}
	s.endOfTopicLocked()
	if s.keyShared() {
		return s.dispatchKeyedUnlock()
	}
	c := s.pickConsumerLocked()
	if c == nil {
		t.mu.Unlock()
		return false
	}
	if len(s.redeliver) > 0 {
		pos := s.redeliver[0]
		s.redeliver = s.redeliver[1:]
		if pe := s.pending[pos]; pe != nil && pe.owner == nil {
			s.deliverLocked(c, pe)
		}
		t.mu.Unlock()
		return true
	}
	now := time.Now().UnixNano()
	pe, step, fetch := s.takeNextLocked(now)
	if pe != nil && !s.holdBackLocked(pe, now) {
		s.deliverLocked(c, pe)
	}
	t.mu.Unlock()
	if fetch != nil {
		return fetch()
	}
	return step
}

// takeNextLocked takes the next entry to dispatch and makes it pending: a
// held-back entry now due (delay.go), else the next one from the log. It
// answers as nextEntryLocked does.
func (s *subscription) takeNextLocked(now int64) (*pendingEntry, bool, func() bool) {
	if pe, fetch := s.takeDueLocked(now); pe != nil || fetch != nil {
		return pe, pe != nil, fetch
	}
	return s.nextEntryLocked()
}

// nextEntryLocked takes the entry after readPos from the log and makes it
// pending. It answers that entry (nil if there was none to take, or the
// acks kept for it acknowledged it whole: earlyacks.go), whether
// the cursor moved (an entry taken, or an acknowledged one skipped), and,
// when the entry is neither cached nor read ahead, the read to run once the
// topic's mu is released.
func (s *subscription) nextEntryLocked() (*pendingEntry, bool, func() bool) {
	if s.readsCompactedLocked() {
		if pe, step, fetch, ok := s.compactedNextLocked(); ok {
			return pe, step, fetch
		}
	}
	t := s.t
	o := t.orderLocked()
	pos, ok := o.next(s.readPos)
	if !ok {
		return nil, false, nil
	}
	if s.acks.isAcked(o, pos) || s.pending[pos] != nil { // pending: met again after undelayLocked
		s.readPos = pos
		return nil, true, nil
	}
	e := t.mu.cache.get(pos)
	if e == nil {
		e = s.readAhead[pos]
		delete(s.readAhead, pos)
	}
	if e == nil {
		li, last := s.ledgerRangeLocked(pos)
		return nil, false, func() bool { return s.fetch(li, pos, last) }
	}
	s.readPos = pos
	return s.pendLocked(pos, e), true, nil
}

// ledgerRangeLocked answers the ledger of pos and the last entry to read
// ahead to.
func (s *subscription) ledgerRangeLocked(pos ids.Position) (ids.LedgerID, ids.EntryID) {
	t := s.t
	i := t.orderLocked().index(pos.Ledger)
	last := ids.EntryID(t.entriesLocked(i) - 1)
	return pos.Ledger, min(last, pos.Entry+ids.EntryID(t.n.cfg.ReadAheadEntries)-1)
}

// maxReadBackoff caps the wait between failed catch-up reads.
const maxReadBackoff = 10 * time.Second

// fetch reads entries first..last of ledger id from the bookies into the
// read-ahead buffer (replacing it, so it stays bounded).
func (s *subscription) fetch(id ids.LedgerID, first ids.Position, last ids.EntryID) bool {
	t := s.t
	ctx, cancel := context.WithTimeout(s.ctx, t.n.cfg.MetaTimeout)
	defer cancel()
	es, err := t.readEntries(ctx, id, first.Entry, last)
	if err != nil {
		if s.ctx.Err() == nil {
			// Doubling from 200 ms to 10 s: a blip costs little, and an
			// entry that cannot be read (damaged on every copy) is not
			// logged and read five times a second for as long as the
			// subscription waits on it.
			select { // a move before this failure is not one past it
			case <-s.moved:
			default:
			}
			wait := min(200*time.Millisecond<<min(s.readFailures, 6), maxReadBackoff)
			s.readFailures++
			t.log.Warn("catch-up read failed", "subscription", s.name, "ledger", id, "entry", first.Entry,
				"failures", s.readFailures, "retry_in", wait, "err", err)
			select { // back off, then let the loop retry
			case <-s.ctx.Done():
			case <-s.moved: // a seek or reset, perhaps past the entry: try now
				s.readFailures = 0
			case <-time.After(wait):
			}
			s.signal()
		}
		return false
	}
	s.readFailures = 0
	t.mu.Lock()
	defer t.mu.Unlock()
	s.readAhead = make(map[ids.Position]*cachedEntry, len(es))
	for _, e := range es {
		s.readAhead[e.pos] = e
	}
	return true
}

// readEntries reads and decodes entries of one ledger: from the object
// store once its offload is complete (so that deleting the bookie copy
// never races a read), else from the bookies. It may answer a prefix.
func (t *topic) readEntries(ctx context.Context, id ids.LedgerID, first, last ids.EntryID) ([]*cachedEntry, error) {
	l, err := t.n.meta.GetLedger(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.n.tier != nil && readable(l) {
		es, err := t.n.tier.readOffloaded(ctx, l, first, last)
		if err == nil {
			return es, nil
		}
		t.n.m.tierReadErrors.Inc()
		if l.Offload.State != metadata.OffloadComplete || ctx.Err() != nil {
			return nil, err
		}
		// The bookies still hold the copy the object was verified against:
		// serve it, whatever kept the object from being read (damaged,
		// cut short, gone, or the store out), never bad bytes.
		if damagedObject(err) {
			t.log.Error("offloaded ledger is corrupt, cut short or gone in the object store; reading the bookies", "ledger", id, "err", err)
		} else {
			t.log.Warn("offloaded ledger unreadable from the object store; reading the bookies", "ledger", id, "err", err)
		}
	}
	raw, err := t.n.ledgers.Read(ctx, l, first, last)
	if err != nil {
		return nil, err
	}
	out := make([]*cachedEntry, 0, len(raw))
	for _, r := range raw {
		b, err := entry.Decode(r.Payload)
		if err != nil {
			return nil, err
		}
		out = append(out, &cachedEntry{pos: ids.Position{Ledger: id, Entry: r.ID}, batch: b, size: len(r.Payload)})
	}
	return out, nil
}

// pickConsumerLocked answers a consumer with permits and room: the active
// one of a failover subscription, else round-robin.
func (s *subscription) pickConsumerLocked() *consumer {
	if s.typ == servingpb.SubscriptionType_FAILOVER {
		if c := s.active; c != nil && c.hasRoomLocked(s.t.n.cfg.MaxUnackedPerConsumer) {
			return c
		}
		return nil
	}
	n := len(s.consumers)
	for i := 0; i < n; i++ {
		c := s.consumers[(s.rr+i)%n]
		if c.hasRoomLocked(s.t.n.cfg.MaxUnackedPerConsumer) {
			s.rr = (s.rr + i + 1) % n
			return c
		}
	}
	return nil
}

// anyRoomLocked reports whether some consumer could take a message.
func (s *subscription) anyRoomLocked() bool {
	for _, c := range s.consumers {
		if c.hasRoomLocked(s.t.n.cfg.MaxUnackedPerConsumer) {
			return true
		}
	}
	return false
}

// consumersChangedLocked updates the dispatch after an attach or a detach.
func (s *subscription) consumersChangedLocked() {
	s.chooseActiveLocked()
	if s.keyShared() {
		s.ks.ring = newHashRing(s.consumers)
		s.ks.rescan = true
	}
	s.signal()
}

// chooseActiveLocked recomputes the consumer a failover subscription
// delivers to, after an attach or a detach, chosen as Pulsar chooses it:
// the consumers sorted by name (attach order among equal names), then the
// one at the partition's index modulo their number, so that the partitions
// of a topic spread over the consumers and every node that loads a
// partition picks the same one. If another consumer that is still attached
// was active, what it holds goes to the new one, so that the new one
// receives the messages in order.
func (s *subscription) chooseActiveLocked() {
	prev := s.active
	s.active = nil
	if s.typ != servingpb.SubscriptionType_FAILOVER || len(s.consumers) == 0 {
		return
	}
	sorted := slices.Clone(s.consumers)
	slices.SortStableFunc(sorted, func(a, b *consumer) int { return strings.Compare(a.name, b.name) })
	s.active = sorted[s.partition%len(sorted)]
	if prev != nil && prev != s.active && slices.Contains(s.consumers, prev) {
		s.unassignLocked(prev, nil)
	}
}

// deliverLocked sends the unacknowledged messages of pe to c.
func (s *subscription) deliverLocked(c *consumer, pe *pendingEntry) {
	pe.owner = c
	c.unacked++
	s.sendLocked(c, pe, nil)
}

// sendLocked sends messages idx of pe to c (every unacknowledged one when
// idx is nil); the caller recorded c as their owner.
func (s *subscription) sendLocked(c *consumer, pe *pendingEntry, idx []int) {
	b := pe.e.batch
	n := len(idx)
	if idx == nil {
		n = len(b.Messages) - pe.nAcked
	}
	msgs := make([]*servingpb.ReceivedMessage, 0, n)
	delayed := pe.e.deliverAtLocked() != 0
	add := func(i int) {
		m := &b.Messages[i]
		props := m.Properties
		if delayed {
			props = maps.Clone(props)
			delete(props, entry.DeliverAtProperty)
		}
		msgs = append(msgs, &servingpb.ReceivedMessage{
			Id:  &servingpb.MessageId{Ledger: uint64(pe.e.pos.Ledger), Entry: int64(pe.e.pos.Entry), Batch: int32(i)},
			Key: m.Key, Properties: props, Payload: m.Payload,
			PublishTimeUnixNano: b.PublishTime, EventTimeUnixNano: m.EventTime,
			ProducerName: b.ProducerName, SequenceId: m.SequenceID, RedeliveryCount: pe.redeliveryCount(i),
		})
	}
	if idx != nil {
		for _, i := range idx {
			add(i)
		}
	} else {
		for i := range b.Messages {
			if !pe.acked[i] {
				add(i)
			}
		}
	}
	c.permits -= int64(len(msgs))
	s.t.n.m.deliveredMessages.WithLabelValues(s.t.name).Add(float64(len(msgs)))
	if s.durable {
		var bytes int
		for _, m := range msgs {
			bytes += len(m.Payload)
		}
		s.sentMsgs.Add(int64(len(msgs)))
		s.sentBytes.Add(int64(bytes))
	}
	if s.outbox != nil {
		s.outbox.add(c, msgs)
		return
	}
	c.send(&servingpb.ConsumeResponse{Kind: &servingpb.ConsumeResponse_Messages{Messages: &servingpb.Messages{Messages: msgs}}})
}

// ackLocked acknowledges messages; cumulative acks everything up to and
// including ids[0] that was delivered. early is set on the acks of a
// consumer whose stream is live: those of messages not read yet are kept
// until they are (earlyacks.go).
func (s *subscription) ackLocked(msgIDs []ids.MessageID, cumulative, early bool) error {
	if cumulative && (s.typ == servingpb.SubscriptionType_SHARED || s.keyShared()) {
		return errcode.New(errcode.InvalidArgument, "cumulative ack is not allowed on a %s subscription", subTypeString(s.typ))
	}
	if early {
		s.earlyAckLocked(msgIDs, cumulative)
	}
	if cumulative {
		if len(msgIDs) == 0 {
			return nil
		}
		msgIDs = s.expandCumulativeLocked(msgIDs[0])
	}
	for _, id := range msgIDs {
		pe := s.pending[id.Position()]
		if pe == nil || id.Batch < 0 || int(id.Batch) >= len(pe.acked) || pe.acked[id.Batch] {
			continue
		}
		if pe.keyed != nil {
			if pe.keyed.owners[id.Batch] != nil {
				s.releaseLocked(pe, int(id.Batch))
			} else {
				s.stopWaitingLocked(pe, int(id.Batch))
			}
		}
		pe.acked[id.Batch] = true
		pe.nAcked++
		if pe.nAcked == len(pe.acked) {
			s.entryAckedLocked(id.Position(), pe)
		}
	}
	s.ks.rescan = s.keyShared()
	s.dirty = true
	s.signal()
	return nil
}

// expandCumulativeLocked lists every pending message at or before target.
func (s *subscription) expandCumulativeLocked(target ids.MessageID) []ids.MessageID {
	o := s.t.orderLocked()
	var out []ids.MessageID
	for pos, pe := range s.pending {
		c := o.cmp(pos, target.Position())
		if c > 0 {
			continue
		}
		for i := range pe.acked {
			if c < 0 || int32(i) <= target.Batch {
				out = append(out, ids.MessageID{Ledger: pos.Ledger, Entry: pos.Entry, Batch: int32(i)})
			}
		}
	}
	return out
}

func (s *subscription) entryAckedLocked(pos ids.Position, pe *pendingEntry) {
	delete(s.pending, pos)
	delete(s.batchAcks, pos)
	if pe.owner != nil {
		pe.owner.unacked--
	}
	s.acks.ack(s.t.orderLocked(), pos) // a key_shared entry still on the redeliver list is skipped there
}

// unassignLocked queues c's unacknowledged entries for redelivery to the
// other consumers. nacked names the messages that failed (a nack or an ack
// timeout): the entries they are in are given back whole, since an entry
// has one owner here, but only the named messages count a redelivery; the
// siblings that come back with them did not fail. A named message counts
// even when its entry is no longer c's (given back for a sibling's nack,
// or redelivered to another consumer): it failed at c all the same, and
// the client drops copies with no more than the count it nacked, sent
// before the nack arrived. Nil gives back every entry c holds, counting
// each of its unacknowledged messages (c left, or is no longer a failover
// subscription's active consumer).
func (s *subscription) unassignLocked(c *consumer, nacked []ids.MessageID) {
	if s.keyShared() {
		s.unassignKeyedLocked(c, nacked)
		return
	}
	for pos, idx := range givenBackByEntry(s.pending, nacked, func(pe *pendingEntry) bool { return pe.owner == c }) {
		pe := s.pending[pos]
		if pe == nil {
			continue
		}
		for _, i := range idx {
			if !pe.acked[i] {
				pe.givenBack(i)
			}
		}
		if pe.owner != c {
			continue
		}
		pe.owner = nil
		c.unacked--
		s.redeliver = append(s.redeliver, pos)
	}
	o := s.t.orderLocked()
	sort.Slice(s.redeliver, func(i, j int) bool { return o.cmp(s.redeliver[i], s.redeliver[j]) < 0 })
	s.signal()
}

// givenBackByEntry groups the batch indexes of nacked by entry; for nil
// nacked, every index of each pending entry that holds accepts.
func givenBackByEntry(pending map[ids.Position]*pendingEntry, nacked []ids.MessageID, holds func(*pendingEntry) bool) map[ids.Position][]int {
	out := make(map[ids.Position][]int)
	if nacked == nil {
		for pos, pe := range pending {
			if holds(pe) {
				out[pos] = allIndexes(len(pe.acked))
			}
		}
		return out
	}
	for _, id := range nacked {
		pe := pending[id.Position()]
		if pe == nil || id.Batch < 0 || int(id.Batch) >= len(pe.acked) {
			continue
		}
		out[id.Position()] = append(out[id.Position()], int(id.Batch))
	}
	// Each index once, however often it is named: sorted and compacted,
	// not searched per id, which was quadratic in the ids of one entry
	// (seconds under t.mu for a nack of a 100,000-message batch).
	for pos, idx := range out {
		slices.Sort(idx)
		out[pos] = slices.Compact(idx)
	}
	return out
}

func allIndexes(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// expireLocked acknowledges everything up to target (messages past the
// namespace's TTL), including entries delivered and not yet acknowledged.
func (s *subscription) expireLocked(target ids.Position) {
	o := s.t.orderLocked()
	if o.cmp(target, s.acks.markDelete) <= 0 {
		return
	}
	for pos, pe := range s.pending {
		if o.cmp(pos, target) <= 0 {
			delete(s.pending, pos)
			if pe.owner != nil {
				pe.owner.unacked--
			}
			if pe.keyed != nil {
				s.dropKeyedLocked(pe)
			}
		}
	}
	s.acks.ackThrough(o, target)
	if o.cmp(s.readPos, target) < 0 {
		s.readPos = target
	}
	// Expired entries may still be on a key_shared redeliver list, where
	// they count against MaxKeySharedWaitingEntries until a rescan drops
	// them.
	s.ks.rescan = s.keyShared()
	s.dropDelayedThroughLocked(target)
	s.dirty = true
	s.signal()
}

// resetLocked moves the cursor so that the next entry delivered is the one
// after markDelete, at epoch (stored with the move: storeMovedCursor),
// forgetting deliveries in progress.
func (s *subscription) resetLocked(markDelete ids.Position, epoch uint64) {
	s.epoch = epoch
	s.acks.reset(markDelete)
	s.batchAcks = nil
	s.readPos = markDelete
	s.pending = make(map[ids.Position]*pendingEntry)
	s.redeliver = nil
	s.readAhead = make(map[ids.Position]*cachedEntry)
	s.early.clear()
	s.cv, s.cvDone = nil, 0
	for _, c := range s.consumers {
		c.unacked = 0
	}
	ring := s.ks.ring
	s.ks = newKeyShared(s.typ)
	s.ks.ring = ring
	s.delayed = nil
	s.armDelayLocked()
	s.gen++
	s.dirty = true
	select {
	case s.moved <- struct{}{}:
	default:
	}
	s.signal()
}

// disconnectLocked ends the streams of s's consumers other than except
// after the cursor moved, as Pulsar does on a seek or a reset: what they
// hold was read from the old position, and a client drops what it buffered
// when its stream ends and subscribes again at the new one. Left attached,
// they handed it out, and the same messages came again after it. The
// error says the cursor moved, so that their clients drop the acks they
// kept to send on the next stream: sent after the move, an ack of a
// message from before it would acknowledge one the move redelivers. That
// only saves sending them: the move's new epoch is what drops them
// (cursorepoch.go), and it also reaches the consumers that had no stream
// to end.
func (s *subscription) disconnectLocked(except *consumer, why string) {
	for _, c := range s.consumers {
		if c != except {
			err := errcode.New(errcode.Unavailable, "subscription %q of %s %s: subscribe again", s.name, s.t.name, why)
			err.CursorMoved = true
			c.fail(err)
		}
	}
}

// cursorRecordLocked builds the record to persist and clears dirty.
func (s *subscription) cursorRecordLocked() *metadata.Cursor {
	s.dirty = false
	maxBytes := s.t.n.cfg.MaxCursorBytes
	return &metadata.Cursor{
		Topic: s.t.name, Subscription: s.name, Type: subTypeString(s.typ),
		MarkDelete:  s.acks.markDelete,
		AckedRanges: s.acks.encodeRanges(s.t.orderLocked(), maxBytes),
		BatchAcks:   encodeBatchAcks(s.partialAcksLocked(), maxBytes),
		Epoch:       s.epoch,
		UpdatedAt:   time.Now().UnixNano(), Version: s.version,
	}
}
