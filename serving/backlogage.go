package serving

import (
	"context"
	"time"

	"github.com/strata-mq/strata/internal/ids"
)

// Backlog age: how old the oldest message a durable subscription has not
// acknowledged is, by its publish time (Pulsar's oldest backlog message
// age, Kafka's consumer lag in time). A backlog of many entries is fine if
// they are seconds old; an old one means nobody drains it. It is measured
// at each backlog quota check (BacklogQuotaCheckInterval): the entry after
// the mark-delete position is read (from the cache, else from the bookies
// or the object store) only when the mark-delete position moved, on a
// goroutine of its own so that the topic's loop never waits for a read.

// oldestUnacked is the first entry after a subscription's mark-delete
// position, as last measured.
type oldestUnacked struct {
	pos         ids.Position
	publishTime int64 // unix nanoseconds; 0 when there is no backlog
}

// updateBacklogAges measures the backlog age of every durable
// subscription and sets its gauge; one measurement at a time.
func (t *topic) updateBacklogAges() {
	if !t.measuringAges.CompareAndSwap(false, true) {
		return
	}
	type need struct {
		s   *subscription
		pos ids.Position
	}
	var reads []need
	t.mu.Lock()
	if t.mu.state != topicServing {
		t.mu.Unlock()
		t.measuringAges.Store(false)
		return
	}
	o := t.orderLocked()
	for _, s := range t.mu.subs {
		if !s.durable {
			continue
		}
		pos, ok := o.next(s.acks.markDelete)
		switch {
		case !ok:
			s.oldest = oldestUnacked{}
		case s.oldest.pos == pos && s.oldest.publishTime != 0:
		case t.mu.cache.get(pos) != nil:
			s.oldest = oldestUnacked{pos: pos, publishTime: t.mu.cache.get(pos).batch.PublishTime}
		default:
			reads = append(reads, need{s, pos})
		}
	}
	if len(reads) == 0 { // nothing to read: no goroutine needed
		t.setBacklogAgesLocked(time.Now())
		t.mu.Unlock()
		t.measuringAges.Store(false)
		return
	}
	t.mu.Unlock()
	t.goOwned(func() {
		defer t.measuringAges.Store(false)
		for _, r := range reads {
			ctx, cancel := context.WithTimeout(t.ctx, t.n.cfg.MetaTimeout)
			es, err := t.readEntries(ctx, r.pos.Ledger, r.pos.Entry, r.pos.Entry)
			cancel()
			if err != nil || len(es) == 0 {
				t.log.Debug("measuring a backlog's age", "subscription", r.s.name, "at", r.pos, "err", err)
				continue
			}
			t.mu.Lock()
			r.s.oldest = oldestUnacked{pos: r.pos, publishTime: es[0].batch.PublishTime}
			t.mu.Unlock()
		}
		t.mu.Lock()
		t.setBacklogAgesLocked(time.Now())
		t.mu.Unlock()
	})
}

// setBacklogAgesLocked sets each durable subscription's age gauge.
func (t *topic) setBacklogAgesLocked(now time.Time) {
	for _, s := range t.mu.subs {
		if s.durable {
			t.n.m.backlogAge.WithLabelValues(t.name, s.name).Set(s.oldest.age(now).Seconds())
		}
	}
}

// age answers how old the oldest unacknowledged message is at now (0 with
// no backlog).
func (o oldestUnacked) age(now time.Time) time.Duration {
	if o.publishTime == 0 {
		return 0
	}
	return max(0, now.Sub(time.Unix(0, o.publishTime)))
}
