package serving

import (
	"container/heap"
	"context"
	"time"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Delayed delivery, as Pulsar's deliverAt/deliverAfter: an entry whose
// messages carry a delivery time (entry.DeliverAtProperty, set by the SDK)
// is held back by shared and key_shared subscriptions until then; the
// others deliver it at once, as Pulsar's exclusive and failover ones do. On
// key_shared, a delayed message comes after later messages of its key that
// were not delayed, as in Pulsar; once due, it follows the key's rules. The
// dispatcher skips a held entry and keeps only its position and time, in a
// heap; when it is due, the entry is read again (cache, else bookies) and
// delivered. Nothing is persisted: the entry is not acknowledged, so the
// mark-delete position stays before it, and after a takeover the new owner
// meets it again while reading from there and holds it back again.

type delayedEntry struct {
	at  int64 // unix nanoseconds
	pos ids.Position
}

// delayHeap orders delayed entries by time, then position.
type delayHeap []delayedEntry

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.at != b.at {
		return a.at < b.at
	}
	if a.pos.Ledger != b.pos.Ledger {
		return a.pos.Ledger < b.pos.Ledger
	}
	return a.pos.Entry < b.pos.Entry
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(delayedEntry)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// deliverAtLocked is when e may be delivered (0: at once), computed once.
func (e *cachedEntry) deliverAtLocked() int64 {
	if !e.deliverAtKnown {
		e.deliverAt, e.deliverAtKnown = entry.DeliverAt(e.batch), true
	}
	return e.deliverAt
}

// delays reports whether the subscription holds delayed entries back.
func (s *subscription) delays() bool {
	return s.typ == servingpb.SubscriptionType_SHARED || s.typ == servingpb.SubscriptionType_KEY_SHARED
}

// holdBackLocked keeps pe for later when its subscription delays entries
// and the entry is not due yet, forgetting it as pending; it answers
// whether it did.
func (s *subscription) holdBackLocked(pe *pendingEntry, now int64) bool {
	if !s.delays() {
		return false
	}
	at := pe.e.deliverAtLocked()
	if at <= now {
		return false
	}
	delete(s.pending, pe.e.pos)
	heap.Push(&s.delayed, delayedEntry{at: at, pos: pe.e.pos})
	s.armDelayLocked()
	return true
}

// takeDueLocked takes the first held entry that is due, and still neither
// acknowledged (TTL) nor pending, as a new pending entry. When that entry
// is neither cached nor read ahead, it answers instead the read to run
// with the topic's mu released, which puts the entry in the read-ahead
// buffer for the next call; the entry stays held until then.
func (s *subscription) takeDueLocked(now int64) (*pendingEntry, func() bool) {
	t := s.t
	o := t.orderLocked()
	defer s.armDelayLocked()
	for len(s.delayed) > 0 && s.delayed[0].at <= now {
		pos := s.delayed[0].pos
		if s.acks.isAcked(o, pos) || s.pending[pos] != nil {
			heap.Pop(&s.delayed)
			continue
		}
		e := t.mu.cache.get(pos)
		if e == nil {
			e = s.readAhead[pos]
			delete(s.readAhead, pos)
		}
		if e == nil {
			return nil, s.readDue(pos, s.gen)
		}
		heap.Pop(&s.delayed)
		if pe := s.pendLocked(pos, e); pe != nil {
			return pe, nil
		}
	}
	return nil, nil
}

// readDue reads the held entry at pos from the bookies into the read-ahead
// buffer. A failed read is tried again 200 ms later.
func (s *subscription) readDue(pos ids.Position, gen uint64) func() bool {
	return func() bool {
		t := s.t
		ctx, cancel := context.WithTimeout(s.ctx, t.n.cfg.MetaTimeout)
		es, err := t.readEntries(ctx, pos.Ledger, pos.Entry, pos.Entry)
		cancel()
		t.mu.Lock()
		defer t.mu.Unlock()
		if s.gen != gen {
			return false // reset meanwhile: the entry comes again from the log
		}
		if err != nil || len(es) == 0 {
			if s.ctx.Err() == nil {
				t.log.Warn("reading a delayed entry failed; retrying", "subscription", s.name, "entry", pos, "err", err)
			}
			for i := range s.delayed {
				if s.delayed[i].pos == pos {
					s.delayed[i].at = time.Now().Add(200 * time.Millisecond).UnixNano()
					heap.Fix(&s.delayed, i)
					break
				}
			}
			s.armDelayLocked()
			return false
		}
		s.readAhead[pos] = es[0]
		return true
	}
}

// armDelayLocked makes the dispatcher wake when the first held entry is due.
func (s *subscription) armDelayLocked() {
	if len(s.delayed) == 0 {
		if s.delayTimer != nil {
			s.delayTimer.Stop()
		}
		return
	}
	d := time.Until(time.Unix(0, s.delayed[0].at))
	if s.delayTimer == nil {
		s.delayTimer = time.AfterFunc(d, s.signal)
		return
	}
	s.delayTimer.Reset(d)
}

// dropDelayedThroughLocked forgets the held entries at or before target
// (expired by the TTL), so that they stop counting as delayed.
func (s *subscription) dropDelayedThroughLocked(target ids.Position) {
	if len(s.delayed) == 0 {
		return
	}
	o := s.t.orderLocked()
	kept := s.delayed[:0]
	for _, d := range s.delayed {
		if o.cmp(d.pos, target) > 0 {
			kept = append(kept, d)
		}
	}
	s.delayed = kept
	heap.Init(&s.delayed)
	s.armDelayLocked()
}

// undelayLocked gives up holding entries back (the subscription stops
// being shared or key_shared): the cursor reads again from the first held entry, skipping
// what is pending or acknowledged. Nothing is lost or delivered twice, but
// the entries given back when the shared consumers left go first, so they
// may come before held-back entries older than them.
func (s *subscription) undelayLocked() {
	if len(s.delayed) == 0 {
		return
	}
	o := s.t.orderLocked()
	first := s.delayed[0].pos
	for _, d := range s.delayed {
		if o.cmp(d.pos, first) < 0 {
			first = d.pos
		}
	}
	if p := prevPosition(first); o.cmp(p, s.readPos) < 0 {
		s.readPos = p
	}
	s.delayed = nil
	s.armDelayLocked()
}
