package serving

import (
	"slices"

	"github.com/strata-mq/strata/internal/ids"
)

// Acks of messages not read yet. A consumer that reconnects sends the acks
// its application made meanwhile right after it subscribes, before its
// first flow (the Go SDK's ackQueue), so that the server has them before
// it redelivers. On the node that had the subscription, the messages are
// still pending and the acks apply at once; on a node that just took the
// topic over (a move, a restart) nothing is pending until the dispatcher
// reads it, and an ack of a message not pending was dropped: the message
// came again. Such acks are kept here and applied as their entries are
// read (pendLocked; compactedNextLocked for the messages of a compaction).
//
// After its flow too, the application acknowledges the messages it held
// from the old stream, and on a reloaded topic the dispatcher may not
// have read their entries yet either: the acks of any consumer whose
// stream is live are kept so. Those of a consumer whose stream is ending
// are not: a reset or another consumer's seek ends the streams of the
// subscription's consumers, and an ack still on its way then crossed the
// move, which it must not undo (the client drops what it kept from before
// it: errcode.Error.CursorMoved). An ack made before a move that ended no
// stream (its consumer was reconnecting, the topic moved, the node
// restarted) is told apart by its cursor epoch and dropped before it is
// applied or kept (cursorepoch.go). Kept acks are not stored (a move
// before their entries are read loses them: redelivered, at-least-once),
// and a reset drops them.

// maxEarlyAcks bounds the message ids kept per subscription; past it, more
// are dropped and their messages redelivered.
const maxEarlyAcks = 100_000

// earlyAcks are a subscription's acks of messages not read yet.
type earlyAcks struct {
	byEntry map[ids.Position][]int32 // batch indexes acknowledged
	n       int                      // ids in byEntry
	// cum is the last cumulative ack kept: the messages up to it are
	// acknowledged as their entries are read.
	cum *ids.MessageID
}

// add keeps the acks of msgIDs, each once, while fewer than maxEarlyAcks
// are kept. The indexes of an entry are kept sorted, and merged with those
// of a request by a sort, not searched per id, which was quadratic in the
// ids of one entry (1.4 s under the topic's lock for an ack of every
// message of a 100,000-message batch).
func (e *earlyAcks) add(msgIDs []ids.MessageID) {
	if len(msgIDs) == 0 || e.n >= maxEarlyAcks {
		return
	}
	var order []ids.Position
	named := make(map[ids.Position][]int32)
	for _, id := range msgIDs {
		pos := id.Position()
		if named[pos] == nil {
			order = append(order, pos)
		}
		named[pos] = append(named[pos], id.Batch)
	}
	if e.byEntry == nil {
		e.byEntry = make(map[ids.Position][]int32)
	}
	for _, pos := range order {
		room := maxEarlyAcks - e.n
		if room <= 0 {
			return
		}
		kept := e.byEntry[pos]
		idx := named[pos]
		merged := append(kept, idx[:min(len(idx), room)]...)
		slices.Sort(merged)
		merged = slices.Compact(merged)
		e.n += len(merged) - len(kept)
		e.byEntry[pos] = merged
	}
}

// apply marks the messages of pe, the entry at pos just read, that the
// kept acks name, forgets those acks, and answers how many it marked.
func (e *earlyAcks) apply(o order, pos ids.Position, pe *pendingEntry) int {
	marked := 0
	mark := func(i int) {
		if i >= 0 && i < len(pe.acked) && !pe.acked[i] {
			pe.acked[i] = true
			pe.nAcked++
			marked++
		}
	}
	for _, b := range e.byEntry[pos] {
		mark(int(b))
	}
	e.n -= len(e.byEntry[pos])
	delete(e.byEntry, pos)
	if e.cum == nil {
		return marked
	}
	last := len(pe.acked) - 1
	switch o.cmp(pos, e.cum.Position()) {
	case 0:
		last = int(e.cum.Batch)
		e.cum = nil
	case 1:
		e.cum, last = nil, -1
	}
	for i := 0; i <= last; i++ {
		mark(i)
	}
	return marked
}

func (e *earlyAcks) clear() { *e = earlyAcks{} }

// earlyAckLocked keeps the acks of msgIDs (cumulative: up to msgIDs[0])
// whose entries are written and not read yet. An ack of a message after
// the last entry written names none a consumer was sent, and kept, it
// would skip the message written there later. An entry pending past
// readPos was read (given back, and delivered again before the entries
// held back behind it once the subscription stopped delaying: delay.go):
// a cumulative ack of it covers what was delivered, and kept, it would
// acknowledge those held-back entries, never delivered, as they are read.
// So would one of an entry acknowledged since; and an entry acknowledged
// whole is passed over, never read, so an ack of it kept would stay.
func (s *subscription) earlyAckLocked(msgIDs []ids.MessageID, cumulative bool) {
	o := s.t.orderLocked()
	unread := func(id ids.MessageID) bool {
		p := id.Position()
		return id.Batch >= 0 && o.cmp(p, s.readPos) > 0 && o.cmp(p, s.t.mu.lastPos) <= 0 && s.pending[p] == nil &&
			!s.acks.isAcked(o, p)
	}
	if cumulative {
		if len(msgIDs) > 0 && unread(msgIDs[0]) {
			s.early.cum = &msgIDs[0]
		}
		return
	}
	var kept []ids.MessageID
	for _, id := range msgIDs {
		if unread(id) {
			kept = append(kept, id)
		}
	}
	s.early.add(kept)
}

// pendLocked makes e, the entry at pos just read, pending, with the kept
// acks of its messages applied, and those the loaded cursor stored
// (addPendingLocked). It answers nil when they acknowledge the whole
// entry: then it is acknowledged, and not delivered.
func (s *subscription) pendLocked(pos ids.Position, e *cachedEntry) *pendingEntry {
	pe := newPendingEntry(e)
	s.applyEarlyLocked(pos, pe)
	if !s.addPendingLocked(pe) {
		return nil
	}
	return pe
}

// applyEarlyLocked applies the kept acks of pe's messages, and marks the
// cursor dirty when there were any: the cursor may have been flushed
// since those acks came, and what they acknowledge of an entry
// acknowledged in part is stored only by a later flush
// (partialAcksLocked); left clean, a second move lost them.
func (s *subscription) applyEarlyLocked(pos ids.Position, pe *pendingEntry) {
	if s.early.apply(s.t.orderLocked(), pos, pe) > 0 {
		s.dirty = true
	}
}
