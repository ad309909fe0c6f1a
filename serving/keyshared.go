package serving

import (
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"time"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Key_Shared dispatch. Producer batches mix keys, so a key_shared
// subscription dispatches message by message, not entry by entry: each
// message with a key goes to the consumer that owns its key's hash on a
// consistent-hash ring of the attached consumers, so a consumer joining or
// leaving moves only about 1/n of the keys. Messages without a key have no
// order to keep and go to any consumer with room, as on a shared
// subscription.
//
// Order per key is kept across consumer changes as Pulsar 4 keeps it
// ("draining hashes", PIP-379): a message whose hash is held by another
// consumer, that is, that consumer still has unacknowledged messages with
// the same hash, waits until that consumer acknowledges them (or leaves and
// gives them back). And a message never overtakes an earlier message of its
// hash that is waiting. Waiting messages stay in their pending entry, which
// stays on the redeliver list; the list is rescanned in log order when an
// ack, a flow, a nack, a consumer change, an expiry or a consumer's full
// response queue draining may have unblocked something.
// MaxKeySharedWaitingEntries bounds it: past that many entries with waiting
// messages, the subscription reads no further until some are delivered, so
// one stuck consumer stalls the subscription instead of filling memory.

// ringPointsPerConsumer is how many points each consumer has on the ring
// (Pulsar's default): enough for an even spread of keys over a handful of
// consumers.
const ringPointsPerConsumer = 100

// keyHash hashes a key or a ring point's label: FNV-1a, then MurmurHash3's
// finalizer (fmix64, as lookup does), because FNV alone leaves labels that
// differ only in their last characters close together on the ring.
func keyHash(s string) uint32 {
	f := fnv.New64a()
	f.Write([]byte(s))
	return uint32(fmix64(f.Sum64()))
}

type ringPoint struct {
	h uint32
	c *consumer
}

// hashRing maps a key's hash to a consumer: the owner of the first point at
// or after it, wrapping around.
type hashRing []ringPoint

// newHashRing places each consumer's points by its name and, among
// consumers of the same name, its rank in attach order, so that two
// consumers that share a name still own different keys.
func newHashRing(cs []*consumer) hashRing {
	r := make(hashRing, 0, len(cs)*ringPointsPerConsumer)
	rank := make(map[string]int, len(cs))
	for _, c := range cs {
		n := rank[c.name]
		rank[c.name]++
		for j := range ringPointsPerConsumer {
			r = append(r, ringPoint{h: keyHash(fmt.Sprintf("%s\x00%d\x00%d", c.name, n, j)), c: c})
		}
	}
	slices.SortStableFunc(r, func(a, b ringPoint) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return 0
	})
	return r
}

func (r hashRing) pick(h uint32) *consumer {
	if len(r) == 0 {
		return nil
	}
	i := sort.Search(len(r), func(i int) bool { return r[i].h >= h })
	if i == len(r) {
		i = 0
	}
	return r[i].c
}

// keyShared is a key_shared subscription's dispatch state.
type keyShared struct {
	ring hashRing
	// holds: for each hash, the consumer holding unacknowledged messages
	// with it and how many.
	holds map[uint32]*hashHold
	// waiting counts, per hash, the messages with a key taken from the log
	// and not delivered (or given back).
	waiting map[uint32]int
	// rescan is set when the redeliver list may hold deliverable messages.
	rescan bool
}

func newKeyShared(typ servingpb.SubscriptionType) keyShared {
	if typ != servingpb.SubscriptionType_KEY_SHARED {
		return keyShared{}
	}
	return keyShared{holds: make(map[uint32]*hashHold), waiting: make(map[uint32]int), rescan: true}
}

type hashHold struct {
	c *consumer
	n int
}

// keyedEntry is the per-message state of a pending entry on a key_shared
// subscription.
type keyedEntry struct {
	owners []*consumer       // nil: not delivered, or given back
	hashes []uint32          // of each message's key; unused for keyless ones
	held   map[*consumer]int // unacknowledged messages per owner
	queued bool              // on the subscription's redeliver list
}

func newKeyedEntry(e *cachedEntry) *keyedEntry {
	n := len(e.batch.Messages)
	k := &keyedEntry{owners: make([]*consumer, n), hashes: make([]uint32, n), held: make(map[*consumer]int, 1)}
	for i := range e.batch.Messages {
		if key := e.batch.Messages[i].Key; key != "" {
			k.hashes[i] = keyHash(key)
		}
	}
	return k
}

// delivery is the messages of one entry going to one consumer.
type delivery struct {
	c   *consumer
	idx []int
}

func (s *subscription) keyShared() bool { return s.typ == servingpb.SubscriptionType_KEY_SHARED }

// hasKey reports whether message i of pe has a key, and so an order to keep.
func hasKey(pe *pendingEntry, i int) bool { return pe.e.batch.Messages[i].Key != "" }

// takeLocked records that c now holds message i of pe.
func (s *subscription) takeLocked(pe *pendingEntry, i int, c *consumer) {
	k := pe.keyed
	k.owners[i] = c
	if k.held[c] == 0 {
		c.unacked++
	}
	k.held[c]++
	if hasKey(pe, i) {
		h := s.ks.holds[k.hashes[i]]
		if h == nil {
			h = &hashHold{c: c}
			s.ks.holds[k.hashes[i]] = h
		}
		h.n++
	}
}

// releaseLocked records that the owner of message i of pe no longer holds
// it (acknowledged, given back or expired).
func (s *subscription) releaseLocked(pe *pendingEntry, i int) {
	k := pe.keyed
	c := k.owners[i]
	k.owners[i] = nil
	if k.held[c]--; k.held[c] == 0 {
		delete(k.held, c)
		c.unacked--
	}
	if hasKey(pe, i) {
		h := k.hashes[i]
		if hold := s.ks.holds[h]; hold != nil {
			if hold.n--; hold.n == 0 {
				delete(s.ks.holds, h)
			}
		}
	}
	s.ks.rescan = true
}

// stopWaitingLocked records that message i of pe, not delivered, no longer
// waits (acknowledged or expired).
func (s *subscription) stopWaitingLocked(pe *pendingEntry, i int) {
	if !hasKey(pe, i) {
		return
	}
	h := pe.keyed.hashes[i]
	if s.ks.waiting[h]--; s.ks.waiting[h] <= 0 {
		delete(s.ks.waiting, h)
	}
}

// keyedEntriesPerPass bounds the entries one dispatch pass of a key_shared
// subscription takes from the log. Each entry is split over the consumers,
// so the pass gathers what each consumer gets from all of them into one
// response (outbox), rather than sending each consumer a sliver per entry.
const keyedEntriesPerPass = 32

// dispatchKeyedUnlock is dispatchOnce for a key_shared subscription, called
// with the topic's mu held, which it releases: the waiting messages first,
// if something may have unblocked them, then entries from the log while
// some consumer has room and not too many entries wait.
func (s *subscription) dispatchKeyedUnlock() bool {
	t := s.t
	s.outbox = &outbox{}
	if s.ks.rescan {
		s.ks.rescan = false
		s.rescanKeyedLocked()
	}
	moved := false
	var fetch func() bool
	now := time.Now().UnixNano()
	for range keyedEntriesPerPass {
		// Take no more from the log while too many entries wait, or
		// while no consumer could take any of it.
		if len(s.redeliver) >= t.n.cfg.MaxKeySharedWaitingEntries || !s.anyRoomLocked() {
			break
		}
		pe, step, f := s.takeNextLocked(now)
		moved = moved || step
		if !step {
			fetch = f
			break
		}
		if pe == nil || s.holdBackLocked(pe, now) {
			continue // acknowledged already, or not due yet
		}
		pe.keyed = newKeyedEntry(pe.e)
		if s.offerKeyedLocked(pe, true, nil) {
			s.queueKeyedLocked(pe.e.pos, pe)
		}
	}
	s.outbox.flush()
	s.outbox = nil
	t.mu.Unlock()
	if fetch != nil && !moved {
		return fetch()
	}
	return moved
}

// outboxResponseBytes is the payload size past which an outbox sends what
// it gathered for a consumer and starts a new response.
const outboxResponseBytes = 1 << 20

// outbox gathers the messages of one dispatch pass per consumer, in order.
type outbox struct {
	cs    []*consumer
	msgs  [][]*servingpb.ReceivedMessage
	bytes []int
}

func (o *outbox) add(c *consumer, msgs []*servingpb.ReceivedMessage) {
	i := slices.Index(o.cs, c)
	if i < 0 {
		o.cs, o.msgs, o.bytes = append(o.cs, c), append(o.msgs, nil), append(o.bytes, 0)
		i = len(o.cs) - 1
	}
	// Send early only while that leaves the two free slots that
	// hasRoomLocked promised: one for the flush, one for a seek's reply.
	if c := o.cs[i]; o.bytes[i] >= outboxResponseBytes && len(c.out) < cap(c.out)-2 {
		o.send(i)
	}
	o.msgs[i] = append(o.msgs[i], msgs...)
	for _, m := range msgs {
		o.bytes[i] += len(m.Payload)
	}
}

// send sends what was gathered for consumer i. The dispatcher checked that
// c had room before each message it gathered, and a consumer with room
// has two free slots (hasRoomLocked); add sends early only with three, so
// the flush leaves one for a seek's reply.
func (o *outbox) send(i int) {
	if len(o.msgs[i]) == 0 {
		return
	}
	o.cs[i].send(&servingpb.ConsumeResponse{Kind: &servingpb.ConsumeResponse_Messages{Messages: &servingpb.Messages{Messages: o.msgs[i]}}})
	o.msgs[i], o.bytes[i] = nil, 0
}

func (o *outbox) flush() {
	for i := range o.cs {
		o.send(i)
	}
}

// offerKeyedLocked delivers what it may of pe's messages that no consumer
// holds, and answers whether any still wait. fresh is set for an entry
// just taken from the log, whose messages are not counted as waiting yet;
// blocked collects the hashes found waiting so far in a rescan (nil for a
// fresh entry, which comes after every waiting message).
func (s *subscription) offerKeyedLocked(pe *pendingEntry, fresh bool, blocked map[uint32]bool) bool {
	k := pe.keyed
	maxUnacked := s.t.n.cfg.MaxUnackedPerConsumer
	var groups []delivery
	room := make(map[*consumer]bool, 2)
	hasRoom := func(c *consumer) bool {
		ok, seen := room[c]
		if !seen {
			ok = c.hasRoomLocked(maxUnacked)
			room[c] = ok
		}
		return ok
	}
	var anyone *consumer // for keyless messages: one consumer with room per entry
	waits := false
	for i := range pe.e.batch.Messages {
		if pe.acked[i] || k.owners[i] != nil {
			continue
		}
		var c *consumer
		if !hasKey(pe, i) {
			if anyone == nil {
				anyone = s.pickConsumerLocked()
			}
			c = anyone
		} else {
			h := k.hashes[i]
			earlier := blocked[h] || (fresh && s.ks.waiting[h] > 0)
			target := s.ks.ring.pick(h)
			hold := s.ks.holds[h]
			if !earlier && target != nil && (hold == nil || hold.c == target) && hasRoom(target) {
				c = target
			} else {
				if fresh {
					s.ks.waiting[h]++
				}
				if blocked != nil {
					blocked[h] = true
				}
			}
			if c != nil && !fresh {
				s.stopWaitingLocked(pe, i)
			}
		}
		if c == nil {
			waits = true
			continue
		}
		s.takeLocked(pe, i, c)
		j := slices.IndexFunc(groups, func(g delivery) bool { return g.c == c })
		if j < 0 {
			groups = append(groups, delivery{c: c})
			j = len(groups) - 1
		}
		groups[j].idx = append(groups[j].idx, i)
	}
	for _, g := range groups {
		s.sendLocked(g.c, pe, g.idx)
	}
	return waits
}

// rescanKeyedLocked offers the waiting messages again, in log order, and
// drops from the redeliver list the entries with nothing left waiting.
func (s *subscription) rescanKeyedLocked() {
	blocked := make(map[uint32]bool)
	kept := s.redeliver[:0]
	for _, pos := range s.redeliver {
		pe := s.pending[pos]
		if pe == nil {
			continue
		}
		if s.offerKeyedLocked(pe, false, blocked) {
			kept = append(kept, pos)
		} else {
			pe.keyed.queued = false
		}
	}
	clear(s.redeliver[len(kept):])
	s.redeliver = kept
}

// queueKeyedLocked puts pe on the redeliver list, in log order.
func (s *subscription) queueKeyedLocked(pos ids.Position, pe *pendingEntry) {
	if pe.keyed.queued {
		return
	}
	pe.keyed.queued = true
	o := s.t.orderLocked()
	i, _ := slices.BinarySearchFunc(s.redeliver, pos, o.cmp)
	s.redeliver = slices.Insert(s.redeliver, i, pos)
}

// unassignKeyedLocked gives back the messages named by nacked that c
// holds, or every message c holds when nacked is nil, to be offered again
// in log order. Ownership is per message here, so the siblings of a nacked
// message stay with c, which may still acknowledge them.
func (s *subscription) unassignKeyedLocked(c *consumer, nacked []ids.MessageID) {
	for pos, idx := range givenBackByEntry(s.pending, nacked, func(pe *pendingEntry) bool { return pe.keyed.held[c] > 0 }) {
		pe := s.pending[pos]
		if pe == nil || pe.keyed.held[c] == 0 {
			continue
		}
		k := pe.keyed
		given := false
		for _, i := range idx {
			if k.owners[i] != c || pe.acked[i] {
				continue
			}
			s.releaseLocked(pe, i)
			pe.givenBack(i)
			if hasKey(pe, i) {
				s.ks.waiting[k.hashes[i]]++
			}
			given = true
		}
		if given {
			s.queueKeyedLocked(pos, pe)
		}
	}
	s.ks.rescan = true
	s.signal()
}

// dropKeyedLocked forgets pe's hold and waiting counts (the entry expired).
func (s *subscription) dropKeyedLocked(pe *pendingEntry) {
	for i := range pe.keyed.owners {
		switch {
		case pe.acked[i]:
		case pe.keyed.owners[i] != nil:
			s.releaseLocked(pe, i)
		default:
			s.stopWaitingLocked(pe, i)
		}
	}
}

// setTypeLocked changes the type of a subscription that has no consumer
// (the next one to attach decides it). Its pending entries are then all
// given back, and so on the redeliver list; their per-message state is
// converted, so that nothing acknowledged is delivered again and nothing
// unacknowledged is forgotten.
func (s *subscription) setTypeLocked(typ servingpb.SubscriptionType) {
	if typ == s.typ {
		return
	}
	wasKeyed := s.keyShared()
	s.typ = typ
	if !s.delays() {
		s.undelayLocked()
	}
	s.ks = newKeyShared(typ)
	s.redeliver = s.redeliver[:0]
	for pos, pe := range s.pending {
		switch {
		case wasKeyed:
			pe.keyed = nil
			pe.owner = nil
		case s.keyShared():
			pe.keyed = newKeyedEntry(pe.e)
			for i := range pe.acked {
				if !pe.acked[i] && hasKey(pe, i) {
					s.ks.waiting[pe.keyed.hashes[i]]++
				}
			}
			pe.keyed.queued = true
		}
		s.redeliver = append(s.redeliver, pos)
	}
	o := s.t.orderLocked()
	sort.Slice(s.redeliver, func(i, j int) bool { return o.cmp(s.redeliver[i], s.redeliver[j]) < 0 })
}
