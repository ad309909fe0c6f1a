package client

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/serving/servingpb"
)

// What a consumer does about messages that are not acknowledged: delayed
// nacks (ConsumerNackRedeliveryDelay), ack timeouts (ConsumerAckTimeout),
// the dead-letter topic (ConsumerDeadLetterPolicy) and the retry-letter
// topic (ConsumerRetryLetter, ReconsumeLater). All live in the client, as in
// Pulsar's; the server only counts redeliveries and holds delayed messages.

// redelivery is a consumer's state for all of them.
type redelivery struct {
	nackDelay  time.Duration
	nackMax    time.Duration // exponential backoff up to it; 0: a fixed delay
	ackTimeout time.Duration
	dlq        *DeadLetterPolicy // Topic resolved

	// With a retry-letter policy: its topic and bound, and the dead-letter
	// topic that bound sends to (dlq's, or the default name).
	retryTopic    string
	maxReconsumes uint32
	retryDLQ      string

	mu struct {
		sync.Mutex
		// nacks are the delayed nacks not yet sent, by due time. One
		// timer, ticking every nackTick while any wait, sends those due
		// together, one request per partition, as Pulsar's
		// NegativeAcksTracker does: each request gives back the entries
		// of the messages it names, so a request per nack redelivered a
		// batch once per failed message in it.
		nacks     map[MessageID]time.Time
		nackTimer *time.Timer
		// handed are the messages taken by the application and neither
		// acknowledged nor nacked since.
		handed map[MessageID]handed
		// done are the latest messages acknowledged or nacked, at most
		// recentDoneCap of them.
		done   recentDone
		dlqP   *Producer // opened at the first dead letter
		retryP *Producer // opened at the first ReconsumeLater
		closed bool
	}
	stop chan struct{} // closes the ack-timeout checker
	done chan struct{}
}

// handed is a message the application holds: when it took it (for the ack
// timeout) and the redelivery count of that copy.
type handed struct {
	at    time.Time
	count uint32
}

// letterTopic is the dead-letter ("DLQ") or retry-letter ("RETRY") topic
// of subscription sub on topic (canonical): name, else Pulsar's
// "<topic>-<subscription>-<suffix>".
func letterTopic(topicName, sub, name, suffix string) (string, error) {
	if name == "" {
		name = topicName + "-" + sub + "-" + suffix
	}
	n, err := topic.Parse(name)
	if err != nil {
		return "", invalidArg("%s topic %q (set the policy's Topic): %v", suffix, name, err)
	}
	return n.String(), nil
}

// startRedelivery sets up c's redelivery features from cfg.
func (c *Consumer) startRedelivery(cfg consumerConfig) error {
	r := &c.redelivery
	r.nackDelay, r.nackMax, r.ackTimeout = cfg.nackDelay, cfg.nackMax, cfg.ackTimeout
	r.mu.nacks = make(map[MessageID]time.Time)
	r.mu.handed = make(map[MessageID]handed)
	r.mu.done = newRecentDone(recentDoneCap)
	if cfg.deadLetter != nil {
		t, err := letterTopic(c.topic, c.sub, cfg.deadLetter.Topic, "DLQ")
		if err != nil {
			return err
		}
		r.dlq = &DeadLetterPolicy{MaxDeliveries: cfg.deadLetter.MaxDeliveries, Topic: t}
	}
	if cfg.retry != nil {
		t, err := letterTopic(c.topic, c.sub, cfg.retry.Topic, "RETRY")
		if err != nil {
			return err
		}
		r.retryTopic, r.maxReconsumes = t, cfg.retry.MaxReconsumes
		if r.dlq != nil {
			r.retryDLQ = r.dlq.Topic
		} else if r.retryDLQ, err = letterTopic(c.topic, c.sub, "", "DLQ"); err != nil {
			return err
		}
	}
	if r.ackTimeout > 0 {
		r.stop, r.done = make(chan struct{}), make(chan struct{})
		go c.checkAckTimeouts()
	}
	return nil
}

// stopRedelivery drops the delayed nacks, stops the ack-timeout checker and
// closes the dead-letter producer.
func (c *Consumer) stopRedelivery() {
	r := &c.redelivery
	r.mu.Lock()
	r.mu.closed = true
	if r.mu.nackTimer != nil {
		r.mu.nackTimer.Stop()
		r.mu.nackTimer = nil
	}
	clear(r.mu.nacks)
	ps := []*Producer{r.mu.dlqP, r.mu.retryP}
	r.mu.Unlock()
	if r.stop != nil {
		close(r.stop)
		<-r.done
	}
	for _, p := range ps {
		if p != nil {
			_ = p.Close()
		}
	}
}

// handOut decides what Receive does with m: false when m is a copy to
// drop (see held), or went to the dead-letter topic instead (or failed to,
// and was nacked to come back).
func (c *Consumer) handOut(ctx context.Context, m *Message) (bool, error) {
	r := &c.redelivery
	r.mu.Lock()
	if r.heldLocked(m) {
		r.mu.Unlock()
		return false, nil
	}
	r.mu.Unlock()
	if r.dlq != nil && m.RedeliveryCount >= r.dlq.MaxDeliveries {
		return false, c.deadLetter(ctx, m)
	}
	r.mu.Lock()
	r.mu.handed[m.ID] = handed{at: time.Now(), count: m.RedeliveryCount}
	r.mu.Unlock()
	return true, nil
}

// heldLocked reports whether m is a stale copy, to drop: the application
// holds its message (took it and has not acknowledged or nacked it yet),
// or acknowledged it, or nacked a copy with the same redelivery count or a
// higher one. Such copies come when the server gives back an entry for a
// sibling's nack: Shared, Exclusive and Failover subscriptions own entries
// whole, and the server sends again every message of the entry it has no
// ack for, acks still on their way included, with the counts they had
// then. The server raises a message's count for each nack of it, whoever
// owns it (serving's unassignLocked), so a copy sent after it took the
// nack has a higher count and is handed out. Dropping is safe: the server
// has the ack or the nack, or will, or the application holds the message;
// a new stream forgets all of it, since the server then sends again
// whatever it has no ack for.
func (r *redelivery) heldLocked(m *Message) bool {
	if _, ok := r.mu.handed[m.ID]; ok {
		return true
	}
	return r.mu.done.stale(m.ID, m.RedeliveryCount)
}

// deadLetter publishes m to the dead-letter topic, then acknowledges it. A
// failed publish nacks m, to be tried again when it comes back; the error is
// returned unless it is retriable (an unavailable node, say), when Receive
// goes on.
func (c *Consumer) deadLetter(ctx context.Context, m *Message) error {
	r := &c.redelivery
	p, err := c.letterProducer(ctx, &r.mu.dlqP, r.dlq.Topic)
	if err == nil {
		_, err = p.Send(ctx, &ProducerMessage{Key: m.Key, Payload: m.Payload, Properties: letterProperties(m, 2), EventTime: m.EventTime})
	}
	if err != nil {
		_ = c.nackNow(m.ID)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errcode.IsRetriable(err) {
			c.c.cfg.logger.Warn("dead-lettering failed; the message comes back to be tried again",
				"topic", m.Topic, "id", m.ID, "dead_letter_topic", r.dlq.Topic, "err", err)
			return nil
		}
		return fmt.Errorf("client: dead-lettering %v to %s: %w", m.ID, r.dlq.Topic, err)
	}
	return c.Ack(m)
}

// letterProperties copies m's properties for a dead-letter or retry copy,
// adding where it first came from (kept from an earlier copy's).
func letterProperties(m *Message, extra int) map[string]string {
	props := make(map[string]string, len(m.Properties)+extra)
	maps.Copy(props, m.Properties)
	if _, ok := props[PropertyRealTopic]; !ok {
		props[PropertyRealTopic] = m.Topic
		props[PropertyOriginMessageID] = m.ID.String()
	}
	return props
}

// letterProducer opens the dead-letter or retry producer (*slot, a field of
// r.mu) at first use, outside r.mu (it is a network call), keeping the
// first one opened.
func (c *Consumer) letterProducer(ctx context.Context, slot **Producer, topicName string) (*Producer, error) {
	r := &c.redelivery
	r.mu.Lock()
	p, closed := *slot, r.mu.closed
	r.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if p != nil {
		return p, nil
	}
	p, err := c.c.NewProducer(ctx, topicName)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.mu.closed:
		_ = p.Close()
		return nil, ErrClosed
	case *slot != nil: // another call opened one meanwhile
		_ = p.Close()
	default:
		*slot = p
	}
	return *slot, nil
}

// ReconsumeLater hands msg back to be consumed again after delay, through
// the retry-letter topic (ConsumerRetryLetter): it publishes a copy due
// then and acknowledges msg. A message already retried MaxReconsumes times
// goes to the dead-letter topic instead. If the publish fails, msg is left
// unacknowledged (Nack it, or it comes back after a reconnect) and the
// error is returned. Without a retry-letter policy it fails with
// ErrInvalidArgument.
func (c *Consumer) ReconsumeLater(ctx context.Context, msg *Message, delay time.Duration) error {
	r := &c.redelivery
	if r.retryTopic == "" {
		return invalidArg("ReconsumeLater needs a retry-letter policy (ConsumerRetryLetter)")
	}
	if delay < 0 {
		return invalidArg("ReconsumeLater: negative delay %v", delay)
	}
	times := uint64(1)
	if n, err := strconv.ParseUint(msg.Properties[PropertyReconsumeTimes], 10, 32); err == nil {
		times = n + 1
	}
	props := letterProperties(msg, 4)
	props[PropertyReconsumeTimes] = strconv.FormatUint(times, 10)
	props[PropertyDelayTime] = strconv.FormatInt(delay.Milliseconds(), 10)
	out := &ProducerMessage{Key: msg.Key, Payload: msg.Payload, Properties: props, EventTime: msg.EventTime, DeliverAfter: delay}
	slot, to := &r.mu.retryP, r.retryTopic
	if r.maxReconsumes > 0 && times > uint64(r.maxReconsumes) {
		slot, to = &r.mu.dlqP, r.retryDLQ
		out.DeliverAfter = 0
	}
	p, err := c.letterProducer(ctx, slot, to)
	if err == nil {
		_, err = p.Send(ctx, out)
	}
	if err != nil {
		return fmt.Errorf("client: reconsume %v through %s: %w", msg.ID, to, err)
	}
	return c.Ack(msg)
}

// acked records that id (and, cumulative, every message before it in its
// partition) is done with, which stops its ack timeout.
func (c *Consumer) acked(id MessageID, cumulative bool) {
	r := &c.redelivery
	r.mu.Lock()
	defer r.mu.Unlock()
	if !cumulative {
		delete(r.mu.handed, id)
		r.mu.done.add(id, ackedAll)
		return
	}
	for h := range r.mu.handed {
		if h.Partition == id.Partition && !id.Less(h) {
			delete(r.mu.handed, h)
			r.mu.done.add(h, ackedAll)
		}
	}
	r.mu.done.add(id, ackedAll)
}

// nacked records that the application gave back id's copy with
// redelivery count.
func (c *Consumer) nacked(id MessageID, count uint32) {
	r := &c.redelivery
	r.mu.Lock()
	if h, ok := r.mu.handed[id]; ok { // NackID knows no count
		count = max(count, h.count)
	}
	delete(r.mu.handed, id)
	r.mu.done.add(id, count)
	r.mu.Unlock()
}

// forgetHanded drops the ack timeouts, delayed nacks and recorded acks of
// partition's messages: its stream was (re)opened, and the server
// redelivers what the last one had not acknowledged (a nack or timeout of
// an older delivery would give back the new one), or it sought, and what
// was acknowledged comes again on purpose.
func (c *Consumer) forgetHanded(partition int32) {
	r := &c.redelivery
	r.mu.Lock()
	defer r.mu.Unlock()
	for h := range r.mu.handed {
		if h.Partition == partition {
			delete(r.mu.handed, h)
		}
	}
	for id := range r.mu.nacks {
		if id.Partition == partition {
			delete(r.mu.nacks, id)
		}
	}
	r.mu.done.forget(partition)
}

// delayFor is how long a nack of a message redelivered count times waits.
func (r *redelivery) delayFor(count uint32) time.Duration {
	d := r.nackDelay
	for range count {
		if r.nackMax == 0 || d >= r.nackMax {
			break
		}
		d *= 2
	}
	if r.nackMax != 0 {
		d = min(d, r.nackMax)
	}
	return d
}

// nack gives id back, after the nack delay for a message redelivered count
// times.
func (c *Consumer) nack(id MessageID, count uint32) error {
	if id.retry && c.retry != nil {
		return c.retry.nack(id, count)
	}
	r := &c.redelivery
	c.nacked(id, count)
	delay := r.delayFor(count)
	if delay == 0 {
		return c.nackNow(id)
	}
	if _, err := c.part(id); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return ErrClosed
	}
	r.mu.nacks[id] = time.Now().Add(delay)
	if r.mu.nackTimer == nil {
		r.mu.nackTimer = time.AfterFunc(r.nackTick(), c.sendDueNacks)
	}
	return nil
}

// nackTick is how often delayed nacks are checked: a third of the nack
// delay, as in Pulsar, so a nack goes at most that late and the nacks due
// within one tick go together.
func (r *redelivery) nackTick() time.Duration { return max(r.nackDelay/3, time.Millisecond) }

// sendDueNacks sends the delayed nacks now due, one request per partition,
// and rearms the timer while others wait.
func (c *Consumer) sendDueNacks() {
	r := &c.redelivery
	due := map[int32][]MessageID{}
	now := time.Now()
	r.mu.Lock()
	for id, at := range r.mu.nacks {
		if !at.After(now) {
			due[id.Partition] = append(due[id.Partition], id)
			delete(r.mu.nacks, id)
		}
	}
	switch {
	case r.mu.closed:
	case len(r.mu.nacks) > 0:
		r.mu.nackTimer.Reset(r.nackTick())
	default:
		r.mu.nackTimer = nil
	}
	r.mu.Unlock()
	for _, ids := range due {
		_ = c.nackNow(ids...) // lost to a reconnect: redelivered anyway
	}
}

// nackNow sends a nack for ids of one partition, after the acks gathered
// for it: the server gives back the unacknowledged messages of each entry
// named, and an ack still gathered here would come back with them.
func (c *Consumer) nackNow(ids ...MessageID) error {
	pc, err := c.part(ids[0])
	if err != nil {
		return err
	}
	wire := make([]*servingpb.MessageId, 0, len(ids))
	for _, id := range ids {
		for _, cid := range c.chunks.chunkIDs(id, false) {
			wire = append(wire, cid.proto())
		}
	}
	pc.flushAcks()
	return pc.send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Nack{Nack: &servingpb.Nack{Ids: wire}}})
}

// checkAckTimeouts nacks, a few times per ack timeout, the messages handed
// out longer than the timeout ago.
func (c *Consumer) checkAckTimeouts() {
	r := &c.redelivery
	defer close(r.done)
	tick := time.NewTicker(max(r.ackTimeout/4, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
		expired := map[int32][]MessageID{}
		r.mu.Lock()
		for id, h := range r.mu.handed {
			if time.Since(h.at) >= r.ackTimeout {
				expired[id.Partition] = append(expired[id.Partition], id)
				delete(r.mu.handed, id)
				r.mu.done.add(id, h.count)
			}
		}
		r.mu.Unlock()
		for _, ids := range expired {
			c.c.cfg.logger.Debug("ack timeout: redelivering", "topic", c.topic, "messages", len(ids))
			_ = c.nackNow(ids...) // lost to a reconnect: redelivered anyway
		}
	}
}
