package client

import (
	"cmp"
	"errors"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving/servingpb"
)

// A partition consumer's acknowledgements travel on its stream, and a
// stream comes and goes: a topic moves (an unload, a rebalance), its owner
// changes, a connection breaks. An ack that cannot be sent when it is made
// (the partition is reconnecting) or whose send fails is kept, as Pulsar's
// PersistentAcknowledgmentsGroupingTracker keeps its pending acks, and
// sent on the next stream right after its subscribe, before the consumer
// grants permits: the server then has it before it redelivers what the
// old stream left unacknowledged, and the acknowledged message does not
// come twice.
//
// An ack sent in the second before its stream ended is sent again on the
// next stream, the same way: a Send that returned nil only buffered the
// request, and a node that gives a topic up ends its consumers' streams
// before it flushes their cursors, so a request still on the wire then,
// or read after the flush, is lost.
//
// An ack of a message from before a cursor move (a seek, an admin reset,
// another consumer's seek), sent after it, would acknowledge a message the
// move is to deliver again: the replay would skip it. So every ack goes
// with the cursor epoch of the stream that delivered its message (the
// server tells it in Subscribed, and anew in SeekDone; an ack by id alone
// takes the partition's latest), and the server drops an ack of another
// epoch than the subscription's (serving/cursorepoch.go). That holds
// whichever node the move was made on and whenever the partition comes
// back: while it was reconnecting, after its topic moved, after its node
// restarted. The epoch travels with each kept ack, so one request carries
// acks of one epoch.
//
// The SDK also drops, to save sending them, what it knows is stale: a
// seek clears what is kept, and so does a stream the server ends because
// the cursor moved (errcode.Error.CursorMoved), with the acks made after
// that until the next stream is up.

// maxAckBatch caps the ids of one ack request.
const maxAckBatch = 1000

// maxKeptAcks bounds the individual acks a partition keeps while it cannot
// send them, and those it keeps to send again. Past it, the oldest are
// dropped: their messages are redelivered (at-least-once), never lost.
// Kept ids cost 32 bytes each.
const maxKeptAcks = 100_000

// ackResendWindow is how long before its stream ended an ack sent on it is
// sent again on the next stream. A second covers the round trip with room
// to spare; what is sent again needlessly names an entry the server has
// acknowledged already, or a message it acknowledges a second time to no
// effect.
const ackResendWindow = time.Second

// keptAck is an ack and the cursor epoch of the stream that delivered its
// message (0: unknown, which the server applies whatever its epoch).
type keptAck struct {
	id    MessageID
	epoch uint64
}

// ackQueue is a partition's acks not sent yet: gathered for the grouping
// time, or kept because their stream was down or broke.
type ackQueue struct {
	ids []keptAck // individual acks, oldest first; at most maxKeptAcks
	cum *keptAck  // the last cumulative ack made, when not sent
	// fresh counts the ids added since the last take: a request's worth
	// goes at once rather than at the grouping timer.
	fresh int
	// clears counts the clears (seeks): a batch taken before one is
	// neither sent nor put back.
	clears uint64
	// stale is set from a cursor move until the next stream: acks made
	// meanwhile are dropped.
	stale bool
	// sent are the batches sent since the last resume, oldest first, at
	// most maxKeptAcks ids in all (sentIDs); while the stream is live,
	// none older than ackResendWindow. endedAt is when the last stream
	// ended: the next resume queues again those sent from
	// ackResendWindow before it on.
	sent    []ackSent
	sentIDs int
	live    bool
	endedAt time.Time
}

// ackSent is an ack batch and when it was sent.
type ackSent struct {
	at time.Time
	b  ackBatch
}

// ackBatch is what one flush takes from an ackQueue.
type ackBatch struct {
	ids    []keptAck
	cum    *keptAck
	clears uint64
}

// add queues a and answers how many of the oldest ids it dropped over
// maxKeptAcks, and whether a full request is waiting.
func (q *ackQueue) add(a keptAck) (dropped int, full bool) {
	if q.stale {
		return 0, false
	}
	q.ids = append(q.ids, a)
	q.fresh++
	return q.trim(), q.fresh >= maxAckBatch
}

// addCumulative queues a as the cumulative ack to send: only the last one
// made counts (ledger ids are not ordered across owners, so "newest" is
// the order the application made them in).
func (q *ackQueue) addCumulative(a keptAck) {
	if !q.stale {
		q.cum = &a
	}
}

// trim drops the oldest ids over maxKeptAcks, an eighth below it at once so
// that a partition that stays down does not copy its ids on every ack.
func (q *ackQueue) trim() int {
	if len(q.ids) <= maxKeptAcks {
		return 0
	}
	n := len(q.ids) - maxKeptAcks*7/8
	q.ids = q.ids[:copy(q.ids, q.ids[n:])]
	return n
}

func (q *ackQueue) empty() bool { return len(q.ids) == 0 && q.cum == nil }

// take empties q into a batch to send.
func (q *ackQueue) take() ackBatch {
	b := ackBatch{ids: q.ids, cum: q.cum, clears: q.clears}
	q.ids, q.cum, q.fresh = nil, nil, 0
	return b
}

// putBack queues again the part of a taken batch that was not sent, before
// what was added since (older acks first), unless a clear came meanwhile.
// A cumulative ack made since supersedes the batch's. It answers how many
// ids it dropped over maxKeptAcks.
func (q *ackQueue) putBack(b ackBatch) int {
	if b.clears != q.clears {
		return 0
	}
	if q.cum == nil {
		q.cum = b.cum
	}
	q.ids = append(b.ids, q.ids...)
	return q.trim()
}

// clear drops everything queued, sent to be sent again, or taken and not
// yet sent.
func (q *ackQueue) clear() {
	q.ids, q.cum, q.fresh = nil, nil, 0
	q.sent, q.sentIDs = nil, 0
	q.clears++
}

// recordSent remembers b, sent at now, to send it again if its stream
// ends within ackResendWindow, and forgets what is over the bound or, on
// a live stream, older than the window. Once the stream ended, what is
// sent (into it, racing its end) is kept for resume to judge.
func (q *ackQueue) recordSent(b ackBatch, now time.Time) {
	q.sent = append(q.sent, ackSent{at: now, b: b})
	q.sentIDs += len(b.ids)
	for len(q.sent) > 1 && (q.sentIDs > maxKeptAcks || (q.live && now.Sub(q.sent[0].at) > ackResendWindow)) {
		q.sentIDs -= len(q.sent[0].b.ids)
		q.sent = q.sent[1:]
	}
}

// ended notes that the stream ended at now.
func (q *ackQueue) ended(now time.Time) { q.endedAt, q.live = now, false }

// cursorMoved clears q and drops the acks added until resume.
func (q *ackQueue) cursorMoved() {
	q.clear()
	q.stale = true
}

// resume takes acks again, the next stream being up, and queues again,
// before what is queued, the batches sent from ackResendWindow before the
// last stream ended on (including any sent on it after its end was
// noted); at the first stream, nothing ended. It answers how many ids it
// dropped over maxKeptAcks.
func (q *ackQueue) resume() int {
	q.stale, q.live = false, true
	var again ackBatch
	for _, s := range q.sent {
		if !q.endedAt.IsZero() && q.endedAt.Sub(s.at) <= ackResendWindow {
			again.ids = append(again.ids, s.b.ids...)
			again.cum = cmp.Or(s.b.cum, again.cum)
		}
	}
	q.sent, q.sentIDs = nil, 0
	again.clears = q.clears
	return q.putBack(again)
}

// groups divides b's ids into those of its requests: runs of one epoch
// (a request carries one), at most maxAckBatch ids each.
func (b ackBatch) groups() [][]keptAck {
	var out [][]keptAck
	for rest := b.ids; len(rest) > 0; {
		n := 1
		for n < len(rest) && n < maxAckBatch && rest[n].epoch == rest[0].epoch {
			n++
		}
		out = append(out, rest[:n:n])
		rest = rest[n:]
	}
	return out
}

// requests is b as ack requests, one per group, the cumulative ack last.
func (b ackBatch) requests() []*servingpb.ConsumeRequest {
	var reqs []*servingpb.ConsumeRequest
	for _, g := range b.groups() {
		wire := make([]*servingpb.MessageId, len(g))
		for i, a := range g {
			wire[i] = a.id.proto()
		}
		reqs = append(reqs, ackRequest(wire, g[0].epoch, false))
	}
	if b.cum != nil {
		reqs = append(reqs, ackRequest([]*servingpb.MessageId{b.cum.id.proto()}, b.cum.epoch, true))
	}
	return reqs
}

// split divides b into its first n requests (sent) and the rest.
func (b ackBatch) split(n int) (sent, rest ackBatch) {
	gs := b.groups()
	k := 0
	for _, g := range gs[:min(n, len(gs))] {
		k += len(g)
	}
	sent = ackBatch{ids: b.ids[:k:k], clears: b.clears}
	rest = ackBatch{ids: b.ids[k:], cum: b.cum, clears: b.clears}
	if n > len(gs) {
		sent.cum, rest.cum = b.cum, nil
	}
	return sent, rest
}

func ackRequest(ids []*servingpb.MessageId, epoch uint64, cumulative bool) *servingpb.ConsumeRequest {
	return &servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Ack{Ack: &servingpb.Ack{Ids: ids, Cumulative: cumulative, CursorEpoch: epoch}}}
}

// kept is id's ack at epoch, the cursor epoch of the stream that delivered
// it; 0 (an ack by id alone) takes the partition's latest, the epoch of
// the last stream or of the seek since.
func (pc *partitionConsumer) kept(id MessageID, epoch uint64) keptAck {
	if epoch == 0 {
		pc.mu.Lock()
		epoch = pc.mu.epoch
		pc.mu.Unlock()
	}
	return keptAck{id: id, epoch: epoch}
}

// ack queues id, delivered at epoch, for the grouping time (it goes at
// once without grouping, or once a request's worth is queued). An ack
// that cannot be sent now is kept for the partition's next stream.
func (pc *partitionConsumer) ack(id MessageID, epoch uint64) {
	a := pc.kept(id, epoch)
	pc.acks.Lock()
	dropped, full := pc.acks.q.add(a)
	if pc.ackGrouping > 0 && pc.acks.timer == nil {
		pc.acks.timer = time.AfterFunc(pc.ackGrouping, pc.flushAcks)
	}
	pc.acks.Unlock()
	pc.logDropped(dropped)
	if pc.ackGrouping == 0 || full {
		pc.flushAcks()
	}
}

// ackCumulative sends a cumulative ack of id, delivered at epoch, at once,
// with what is queued before it; it is kept, as other acks are, when it
// cannot be sent.
func (pc *partitionConsumer) ackCumulative(id MessageID, epoch uint64) {
	a := pc.kept(id, epoch)
	pc.acks.Lock()
	pc.acks.q.addCumulative(a)
	pc.acks.Unlock()
	pc.flushAcks()
}

// flushAcks sends the queued acks now, if the partition has a stream; if it
// has none, they wait for serve, which sends them on the next stream
// before its flow.
//
// The take and the send are one step under sendMu. Serve flushes the kept
// acks and then sends its flow; a flush elsewhere (the grouping timer's,
// an Ack's) that had taken them and not yet sent them when serve found the
// queue empty would send them after the flow, and the server would
// redeliver their messages first.
func (pc *partitionConsumer) flushAcks() {
	pc.sendMu.Lock()
	defer pc.sendMu.Unlock()
	pc.acks.Lock()
	if pc.acks.timer != nil {
		pc.acks.timer.Stop()
		pc.acks.timer = nil
	}
	if pc.acks.q.empty() || !pc.connected() {
		pc.acks.Unlock()
		return
	}
	b := pc.acks.q.take()
	pc.acks.Unlock()
	rest, err := pc.sendAcksLocked(b)
	if err == nil {
		return
	}
	pc.acks.Lock()
	dropped := pc.acks.q.putBack(rest)
	pc.acks.Unlock()
	pc.logDropped(dropped)
}

// sendAcksLocked sends b on the current stream, remembering what it sent
// (recordSent), and answers what it could not send. The caller holds
// sendMu, which a seek's send holds too while it clears the queue: no
// batch taken before a seek is sent after it.
func (pc *partitionConsumer) sendAcksLocked(b ackBatch) (ackBatch, error) {
	pc.mu.Lock()
	st := pc.mu.stream
	pc.mu.Unlock()
	if st == nil {
		return b, pc.errReconnecting()
	}
	reqs := b.requests()
	n := 0
	var err error
	for n < len(reqs) {
		if err = st.Send(reqs[n]); err != nil {
			break
		}
		n++
	}
	sent, rest := b.split(n)
	if n > 0 {
		pc.acks.Lock()
		pc.acks.q.recordSent(sent, time.Now())
		pc.acks.Unlock()
	}
	return rest, err
}

// clearAcksLocked drops the queued acks and those taken and not yet sent;
// the caller holds sendMu and is about to send a seek.
func (pc *partitionConsumer) clearAcksLocked() { pc.withQueueLocked((*ackQueue).clear) }

// streamEnded notes when the stream ended, for the acks sent just before
// to go again on the next one; when the server ended it because the
// cursor moved, it drops the queued acks and those made until the next
// stream instead.
func (pc *partitionConsumer) streamEnded(err error) {
	pc.sendMu.Lock()
	defer pc.sendMu.Unlock()
	var e *errcode.Error
	if errors.As(err, &e) && e.CursorMoved {
		pc.withQueueLocked((*ackQueue).cursorMoved)
		return
	}
	now := time.Now()
	pc.withQueueLocked(func(q *ackQueue) { q.ended(now) })
}

// withQueueLocked applies f to the queue, which it leaves without a
// grouping timer; the caller holds sendMu.
func (pc *partitionConsumer) withQueueLocked(f func(*ackQueue)) {
	pc.acks.Lock()
	f(&pc.acks.q)
	if pc.acks.timer != nil {
		pc.acks.timer.Stop()
		pc.acks.timer = nil
	}
	pc.acks.Unlock()
}

// resumeAcks takes acks again, a new stream being about to be served, and
// queues again those sent just before the last one ended.
func (pc *partitionConsumer) resumeAcks() {
	pc.acks.Lock()
	dropped := pc.acks.q.resume()
	pc.acks.Unlock()
	pc.logDropped(dropped)
}

func (pc *partitionConsumer) acksQueued() bool {
	pc.acks.Lock()
	defer pc.acks.Unlock()
	return !pc.acks.q.empty()
}

func (pc *partitionConsumer) logDropped(n int) {
	if n > 0 {
		pc.log.Warn("too many acks kept while the partition reconnects: the oldest dropped, their messages come again",
			"dropped", n, "kept", maxKeptAcks*7/8)
	}
}
