package serving

import (
	"context"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// topicOrder orders the positions of a topic by the place of their ledger in
// the managed ledger. Only valid while the topic's mu is held.
type topicOrder struct{ t *topic }

func (t *topic) orderLocked() topicOrder { return topicOrder{t} }

// index is the place of ledger l in the managed ledger, -1 when it is not
// there (trimmed, or never part of it): such positions sort before all.
func (o topicOrder) index(l ids.LedgerID) int {
	for i, li := range o.t.mu.ml.Ledgers {
		if li.ID == l {
			return i
		}
	}
	return -1
}

func (o topicOrder) cmp(a, b ids.Position) int {
	ia, ib := o.index(a.Ledger), o.index(b.Ledger)
	switch {
	case ia < ib:
		return -1
	case ia > ib:
		return 1
	case a.Entry < b.Entry:
		return -1
	case a.Entry > b.Entry:
		return 1
	}
	return 0
}

// next is the durable entry that follows p, if any.
func (o topicOrder) next(p ids.Position) (ids.Position, bool) {
	t := o.t
	ls := t.mu.ml.Ledgers
	i := o.index(p.Ledger)
	if i >= 0 && int64(p.Entry)+1 < t.entriesLocked(i) {
		return ids.Position{Ledger: p.Ledger, Entry: p.Entry + 1}, true
	}
	for j := i + 1; j < len(ls); j++ {
		if t.entriesLocked(j) > 0 {
			return ids.Position{Ledger: ls[j].ID, Entry: 0}, true
		}
	}
	return ids.Position{}, false
}

// entriesLocked is the number of durable entries of the i-th ledger.
func (t *topic) entriesLocked(i int) int64 {
	li := t.mu.ml.Ledgers[i]
	if t.mu.w != nil && li.ID == t.mu.w.ID() {
		return t.mu.cur.entries
	}
	return li.Entries
}

// afterMarkDeleteLocked calls f for every ledger holding entries after
// a's mark-delete position, with how many of its entries lie after it
// (rest) out of how many it has.
func (t *topic) afterMarkDeleteLocked(a *ackState, f func(i int, rest, entries int64)) {
	md := t.orderLocked().index(a.markDelete.Ledger)
	for j := range t.mu.ml.Ledgers {
		e := t.entriesLocked(j)
		switch {
		case j > md:
			f(j, e, e)
		case j == md:
			f(j, max(0, e-int64(a.markDelete.Entry)-1), e)
		}
	}
}

// backlogLocked counts the entries after markDelete that are not acked.
func (t *topic) backlogLocked(a *ackState) uint64 {
	var n int64
	t.afterMarkDeleteLocked(a, func(_ int, rest, _ int64) { n += rest })
	return uint64(max(0, n-a.count))
}

// bytesLocked is the size of ledger i's entries so far.
func (t *topic) bytesLocked(i int) uint64 {
	li := t.mu.ml.Ledgers[i]
	if t.mu.w != nil && li.ID == t.mu.w.ID() {
		return t.mu.cur.bytes
	}
	return li.Bytes
}

// backlogBytesLocked estimates the bytes of the entries after markDelete
// (servingpb.SubscriptionStats.backlog_bytes says how).
func (t *topic) backlogBytesLocked(a *ackState) uint64 {
	var n uint64
	t.afterMarkDeleteLocked(a, func(i int, rest, entries int64) {
		if rest == entries {
			n += t.bytesLocked(i)
		} else if entries > 0 {
			n += uint64(float64(t.bytesLocked(i)) * float64(rest) / float64(entries))
		}
	})
	return n
}

// firstPositionLocked is the position just before the topic's first entry.
func (t *topic) firstPositionLocked() ids.Position {
	if len(t.mu.ml.Ledgers) == 0 {
		return ids.Position{Entry: ids.NoEntry}
	}
	return ids.Position{Ledger: t.mu.ml.Ledgers[0].ID, Entry: ids.NoEntry}
}

// idTargetLocked is the mark-delete position that makes the message id the
// next one delivered, for a seek or a cursor reset. An id of a ledger older
// than the oldest retained (trimmed by retention) means the oldest retained
// message, as in Pulsar. Any other ledger that is not the topic's (a typo,
// another partition's or another topic's id) is refused: it used to sort
// before everything, and so silently rewound the subscription to the start.
func (t *topic) idTargetLocked(id ids.MessageID) (ids.Position, error) {
	p := id.Position()
	if t.orderLocked().index(p.Ledger) >= 0 {
		return prevPosition(p), nil
	}
	ls := t.mu.ml.Ledgers
	if len(ls) > 0 && p.Ledger < ls[0].ID {
		return t.firstPositionLocked(), nil
	}
	if len(ls) == 0 {
		return ids.Position{}, errcode.New(errcode.InvalidArgument, "message id %d:%d: topic %s has no ledger yet", p.Ledger, p.Entry, t.name)
	}
	return ids.Position{}, errcode.New(errcode.InvalidArgument, "message id %d:%d: ledger %d is not one of topic %s (ledgers %d to %d; an id of another partition?)",
		p.Ledger, p.Entry, p.Ledger, t.name, ls[0].ID, ls[len(ls)-1].ID)
}

// checkIDTopic refuses a message id whose ledger's record names another
// topic: ledger ids come from one counter, so another partition's id may
// sort before this topic's oldest retained ledger, which idTargetLocked
// takes for a trimmed ledger of this topic (the oldest message). A ledger
// without a record (deleted) or without a topic is left to the order.
func (t *topic) checkIDTopic(ctx context.Context, id ids.MessageID) error {
	rec, err := t.n.meta.GetLedger(ctx, id.Ledger)
	if err != nil || rec.Topic == "" || rec.Topic == t.name {
		return nil
	}
	return errcode.New(errcode.InvalidArgument, "message id %d:%d is of topic %s, not %s", id.Ledger, id.Entry, rec.Topic, t.name)
}

// prevPosition is the position just before p in its own ledger.
func prevPosition(p ids.Position) ids.Position {
	if p.Entry <= 0 {
		return ids.Position{Ledger: p.Ledger, Entry: ids.NoEntry}
	}
	return ids.Position{Ledger: p.Ledger, Entry: p.Entry - 1}
}
