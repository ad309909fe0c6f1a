package client

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/serving/servingpb"
)

// What a consumer does about messages that are not acknowledged: delayed
// nacks (ConsumerNackRedeliveryDelay), ack timeouts (ConsumerAckTimeout) and
// the dead-letter topic (ConsumerDeadLetterPolicy). All three live in the
// client, as in Pulsar's; the server only counts redeliveries.

// redelivery is a consumer's state for the three.
type redelivery struct {
	nackDelay  time.Duration
	nackMax    time.Duration // exponential backoff up to it; 0: a fixed delay
	ackTimeout time.Duration
	dlq        *DeadLetterPolicy // Topic resolved

	mu struct {
		sync.Mutex
		nacks  map[*time.Timer]int32   // delayed nacks not yet sent, by partition
		handed map[MessageID]time.Time // taken by the application, not acknowledged (with ackTimeout)
		dlqP   *Producer               // opened at the first dead letter
		closed bool
	}
	stop chan struct{} // closes the ack-timeout checker
	done chan struct{}
}

// deadLetterTopic is the dead-letter topic of subscription sub on topic
// (canonical): p.Topic, else Pulsar's "<topic>-<subscription>-DLQ".
func deadLetterTopic(topicName, sub string, p DeadLetterPolicy) (string, error) {
	name := p.Topic
	if name == "" {
		name = topicName + "-" + sub + "-DLQ"
	}
	n, err := topic.Parse(name)
	if err != nil {
		return "", invalidArg("dead-letter topic %q (set DeadLetterPolicy.Topic): %v", name, err)
	}
	return n.String(), nil
}

// startRedelivery sets up c's redelivery features from cfg.
func (c *Consumer) startRedelivery(cfg consumerConfig) error {
	r := &c.redelivery
	r.nackDelay, r.nackMax, r.ackTimeout = cfg.nackDelay, cfg.nackMax, cfg.ackTimeout
	r.mu.nacks = make(map[*time.Timer]int32)
	r.mu.handed = make(map[MessageID]time.Time)
	if cfg.deadLetter != nil {
		t, err := deadLetterTopic(c.topic, c.sub, *cfg.deadLetter)
		if err != nil {
			return err
		}
		r.dlq = &DeadLetterPolicy{MaxDeliveries: cfg.deadLetter.MaxDeliveries, Topic: t}
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
	for t := range r.mu.nacks {
		t.Stop()
	}
	clear(r.mu.nacks)
	p := r.mu.dlqP
	r.mu.Unlock()
	if r.stop != nil {
		close(r.stop)
		<-r.done
	}
	if p != nil {
		_ = p.Close()
	}
}

// handOut decides what Receive does with m: false when m went to the
// dead-letter topic instead (or failed to, and was nacked to come back).
func (c *Consumer) handOut(ctx context.Context, m *Message) (bool, error) {
	r := &c.redelivery
	if r.dlq != nil && m.RedeliveryCount >= r.dlq.MaxDeliveries {
		return false, c.deadLetter(ctx, m)
	}
	if r.ackTimeout > 0 {
		r.mu.Lock()
		r.mu.handed[m.ID] = time.Now()
		r.mu.Unlock()
	}
	return true, nil
}

// deadLetter publishes m to the dead-letter topic, then acknowledges it. A
// failed publish nacks m, to be tried again when it comes back; the error is
// returned unless it is retriable (an unavailable node, say), when Receive
// goes on.
func (c *Consumer) deadLetter(ctx context.Context, m *Message) error {
	r := &c.redelivery
	p, err := c.deadLetterProducer(ctx)
	if err == nil {
		props := make(map[string]string, len(m.Properties)+2)
		maps.Copy(props, m.Properties)
		props[PropertyRealTopic] = m.Topic
		props[PropertyOriginMessageID] = m.ID.String()
		_, err = p.Send(ctx, &ProducerMessage{Key: m.Key, Payload: m.Payload, Properties: props, EventTime: m.EventTime})
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
	return c.AckID(m.ID)
}

// deadLetterProducer opens the dead-letter producer at first use, outside
// r.mu (it is a network call), keeping the first one opened.
func (c *Consumer) deadLetterProducer(ctx context.Context) (*Producer, error) {
	r := &c.redelivery
	r.mu.Lock()
	p, closed := r.mu.dlqP, r.mu.closed
	r.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if p != nil {
		return p, nil
	}
	p, err := c.c.NewProducer(ctx, r.dlq.Topic)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.mu.closed:
		_ = p.Close()
		return nil, ErrClosed
	case r.mu.dlqP != nil: // another Receive opened one meanwhile
		_ = p.Close()
	default:
		r.mu.dlqP = p
	}
	return r.mu.dlqP, nil
}

// acked stops the ack timeout of id (and, cumulative, of every message
// before it in its partition).
func (c *Consumer) acked(id MessageID, cumulative bool) {
	r := &c.redelivery
	if r.ackTimeout == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !cumulative {
		delete(r.mu.handed, id)
		return
	}
	for h := range r.mu.handed {
		if h.Partition == id.Partition && !id.Less(h) {
			delete(r.mu.handed, h)
		}
	}
}

// forgetHanded drops the ack timeouts and delayed nacks of partition's
// messages: its stream was (re)opened, and the server redelivers what the
// last one had not acknowledged; a nack or timeout of an older delivery
// would give back the new one.
func (c *Consumer) forgetHanded(partition int32) {
	r := &c.redelivery
	r.mu.Lock()
	defer r.mu.Unlock()
	for h := range r.mu.handed {
		if h.Partition == partition {
			delete(r.mu.handed, h)
		}
	}
	for t, p := range r.mu.nacks {
		if p == partition {
			t.Stop()
			delete(r.mu.nacks, t)
		}
	}
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
	r := &c.redelivery
	c.acked(id, false)
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
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		r.mu.Lock()
		_, live := r.mu.nacks[t]
		delete(r.mu.nacks, t)
		r.mu.Unlock()
		if live {
			_ = c.nackNow(id) // lost to a reconnect: redelivered anyway
		}
	})
	r.mu.nacks[t] = id.Partition
	return nil
}

// nackNow sends a nack for ids of one partition.
func (c *Consumer) nackNow(ids ...MessageID) error {
	pc, err := c.part(ids[0])
	if err != nil {
		return err
	}
	wire := make([]*servingpb.MessageId, len(ids))
	for i, id := range ids {
		wire[i] = id.proto()
	}
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
		for id, at := range r.mu.handed {
			if time.Since(at) >= r.ackTimeout {
				expired[id.Partition] = append(expired[id.Partition], id)
				delete(r.mu.handed, id)
			}
		}
		r.mu.Unlock()
		for _, ids := range expired {
			c.c.cfg.logger.Debug("ack timeout: redelivering", "topic", c.topic, "messages", len(ids))
			_ = c.nackNow(ids...) // lost to a reconnect: redelivered anyway
		}
	}
}
