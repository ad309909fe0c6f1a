package serving

import (
	"context"
	"maps"
	"time"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Durable subscriptions that read compacted (Pulsar's readCompacted, for
// Exclusive and Failover subscriptions): while the consumer that receives
// asked for it and the subscription's read position is before the
// compaction's horizon, the dispatcher reads the compacted ledger instead
// of the log, and sends the latest message of each key with the id it was
// published with. The log entries it passes over (superseded, deleted by
// a tombstone, or keyless) are acknowledged as it goes, so the mark-delete
// position follows the acknowledgements of what was sent; past the last
// compacted message, everything up to the horizon is, and the log is read
// from there.
//
// Compacted messages from ledgers that retention already deleted sort
// before every retained entry: they are sent only to a subscription still
// at the topic's start (a new one at Earliest), and their acknowledgements
// move nothing, so a subscription that restarts there gets them again
// (at least once). The compacted ledger is read from its first entry each
// time a subscription starts reading it.

// compactedView is a subscription's progress through one compaction.
type compactedView struct {
	c      *metadata.Compaction
	next   ids.EntryID    // next compacted-ledger entry to read
	groups []*cachedEntry // read, not dispatched: one per original entry
	done   bool           // every compacted entry was read
}

// readsCompactedLocked reports whether the consumer s delivers to asked
// to read compacted.
func (s *subscription) readsCompactedLocked() bool {
	switch s.typ {
	case servingpb.SubscriptionType_EXCLUSIVE:
		return len(s.consumers) == 1 && s.consumers[0].readCompacted
	case servingpb.SubscriptionType_FAILOVER:
		return s.active != nil && s.active.readCompacted
	}
	return false
}

// compactedNextLocked is nextEntryLocked for a subscription reading
// compacted; ok is false when the log is to be read instead (no
// compaction, or the read position is at or past its horizon).
func (s *subscription) compactedNextLocked() (pe *pendingEntry, step bool, fetch func() bool, ok bool) {
	t := s.t
	o := t.orderLocked()
	c := t.mu.ml.Compaction
	if c == nil || s.cvDone == c.Ledger || len(t.mu.ml.Ledgers) == 0 {
		s.cv = nil
		return nil, false, nil, false
	}
	// At the start: where a new subscription at Earliest is. A position in
	// a deleted ledger sorts before every kept one too, but says that
	// everything up to there was consumed.
	atStart := s.readPos.Entry == ids.NoEntry && (s.readPos.Ledger == t.mu.ml.Ledgers[0].ID || s.readPos.Ledger == 0)
	horizonKept := o.index(c.Horizon.Ledger) >= 0
	if (horizonKept && o.cmp(s.readPos, c.Horizon) >= 0) || (!horizonKept && !atStart) {
		s.cv = nil
		return nil, false, nil, false
	}
	if s.cv == nil || s.cv.c.Ledger != c.Ledger {
		s.cv = &compactedView{c: c}
	}
	cv := s.cv
	// The last group read may miss messages of its entry that the next read
	// brings: it waits for that read, or for the end.
	for len(cv.groups) > 1 || (len(cv.groups) == 1 && cv.done) {
		g := cv.groups[0]
		cv.groups = cv.groups[1:]
		retained := o.index(g.pos.Ledger) >= 0
		switch {
		case !retained && !atStart:
			continue // consumed before its ledger was deleted
		case retained && o.cmp(g.pos, s.readPos) <= 0:
			continue
		case retained:
			s.ackBetweenLocked(s.readPos, g.pos)
			s.readPos = g.pos
		}
		if s.pending[g.pos] != nil || (retained && s.acks.isAcked(o, g.pos)) {
			return nil, true, nil, true
		}
		pe := newPendingEntry(g)
		for i, m := range g.batch.Messages {
			if m.Properties[compactedIDProperty] == "" { // a message of the entry that compaction left out
				pe.acked[i] = true
				pe.nAcked++
			} else {
				delete(g.batch.Messages[i].Properties, compactedIDProperty)
			}
		}
		s.applyEarlyLocked(g.pos, pe) // as pendLocked does
		if !s.addPendingLocked(pe) {
			return nil, true, nil, true
		}
		return pe, true, nil, true
	}
	if !cv.done {
		return nil, false, func() bool { return s.fetchCompacted(cv) }, true
	}
	// Past the last compacted message: the rest up to the horizon is
	// superseded too, and the log is read from there (from where the
	// subscription is, when the horizon's ledger is gone).
	if horizonKept {
		end, more := o.next(c.Horizon)
		if !more {
			end = ids.Position{Ledger: c.Horizon.Ledger, Entry: c.Horizon.Entry + 1}
		}
		s.ackBetweenLocked(s.readPos, end)
		s.readPos = c.Horizon
	}
	s.cv, s.cvDone = nil, c.Ledger
	return nil, true, nil, true
}

// ackBetweenLocked acknowledges every entry after from and before to (to
// in a kept ledger). It walks the ledgers by index rather than by
// topicOrder.next, whose every step scans the ledger list: a catch-up may
// pass over millions of entries.
func (s *subscription) ackBetweenLocked(from, to ids.Position) {
	t := s.t
	o := t.orderLocked()
	ls := t.mu.ml.Ledgers
	fi, ti := o.index(from.Ledger), o.index(to.Ledger)
	md := s.acks.markDelete
	mdi := o.index(md.Ledger)
	startE := from.Entry + 1
	if fi < 0 { // from is before every kept entry
		fi, startE = 0, 0
	}
	for i := fi; i <= ti && i < len(ls); i++ {
		first, last := ids.EntryID(0), ids.EntryID(t.entriesLocked(i)-1)
		if i == fi {
			first = startE
		}
		if i == ti {
			last = min(last, to.Entry-1)
		}
		for e := first; e <= last; e++ {
			if i < mdi || (i == mdi && e <= md.Entry) {
				continue // at or before the mark-delete position
			}
			p := ids.Position{Ledger: ls[i].ID, Entry: e}
			if s.pending[p] == nil && !s.acks.contains(p) {
				s.acks.insert(p)
			}
		}
	}
	s.acks.advance(o)
	s.dirty = true
}

// fetchCompacted reads the next part of cv's compacted ledger into groups
// of messages that share their original entry, off the topic's lock.
func (s *subscription) fetchCompacted(cv *compactedView) bool {
	t := s.t
	last := min(cv.next+ids.EntryID(t.n.cfg.ReadAheadEntries)-1, ids.EntryID(cv.c.Messages-1))
	ctx, cancel := context.WithTimeout(s.ctx, t.n.cfg.MetaTimeout)
	es, err := t.readEntries(ctx, cv.c.Ledger, cv.next, last)
	cancel()
	if err == nil && len(es) == 0 {
		err = errcode.New(errcode.Unavailable, "compacted ledger %d answered no entry at %d", cv.c.Ledger, cv.next)
	}
	if err != nil {
		t.log.Warn("reading the compacted ledger failed", "subscription", s.name, "ledger", cv.c.Ledger, "err", err)
		backOff(s)
		return false
	}
	var groups []*cachedEntry
	for _, e := range es {
		if len(e.batch.Messages) != 1 {
			t.log.Error("compacted ledger entry holds more than one message", "ledger", cv.c.Ledger, "entry", e.pos.Entry)
			backOff(s)
			return false
		}
		m := e.batch.Messages[0]
		id, err := parseCompactedID(m.Properties[compactedIDProperty])
		if err != nil {
			t.log.Error("compacted ledger entry without its id", "ledger", cv.c.Ledger, "entry", e.pos.Entry, "err", err)
			backOff(s)
			return false
		}
		m.Properties = maps.Clone(m.Properties)
		pos := id.Position()
		var g *cachedEntry
		if n := len(groups); n > 0 && groups[n-1].pos == pos {
			g = groups[n-1]
		} else {
			g = &cachedEntry{pos: pos, batch: &entry.Batch{ProducerName: e.batch.ProducerName, PublishTime: e.batch.PublishTime}}
			groups = append(groups, g)
		}
		for int(id.Batch) >= len(g.batch.Messages) {
			g.batch.Messages = append(g.batch.Messages, entry.Message{}) // left out by compaction
		}
		g.batch.Messages[id.Batch] = m
		g.size += len(m.Payload)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.cv != cv {
		return false // reset or replaced meanwhile
	}
	// The messages of one original entry are consecutive; one cut by this
	// read's end joins the rest at the next read.
	if n := len(cv.groups); n > 0 && len(groups) > 0 && cv.groups[n-1].pos == groups[0].pos {
		merge(cv.groups[n-1], groups[0])
		groups = groups[1:]
	}
	cv.groups = append(cv.groups, groups...)
	cv.next = es[len(es)-1].pos.Entry + 1
	cv.done = int64(cv.next) >= cv.c.Messages
	return true
}

// merge adds the messages of b to a, both of one original entry.
func merge(a, b *cachedEntry) {
	for i, m := range b.batch.Messages {
		if m.Properties[compactedIDProperty] == "" {
			continue
		}
		for i >= len(a.batch.Messages) {
			a.batch.Messages = append(a.batch.Messages, entry.Message{})
		}
		a.batch.Messages[i] = m
	}
	a.size += b.size
}

// backOff waits a moment, on the dispatcher's goroutine, and has it try
// again.
func backOff(s *subscription) {
	select {
	case <-s.ctx.Done():
		return
	case <-time.After(200 * time.Millisecond):
	}
	s.signal()
}
