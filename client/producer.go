package client

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/strata-mq/strata/internal/topic"
)

// ProducerMessage is a message to send.
type ProducerMessage struct {
	// Key routes the message on a partitioned topic (same key, same
	// partition) and is kept with it.
	Key        string
	Payload    []byte
	Properties map[string]string
	// EventTime is the application's time of the event (zero: unset).
	EventTime time.Time
	// DeliverAt delays the message: Shared and KeyShared subscriptions
	// deliver it at this time, not before (as Pulsar's deliverAt; Exclusive
	// and Failover ones deliver it at once). Zero: no delay. A delayed
	// message is batched only with messages of the same delivery time.
	DeliverAt time.Time
	// DeliverAfter delays the message by this long from the send (rounded
	// up to the millisecond, so that messages sent together with the same
	// delay share a batch), when DeliverAt is zero.
	DeliverAfter time.Duration
}

// deliverAt is when m is due, in unix nanoseconds (0: at once).
func (m *ProducerMessage) deliverAt(now time.Time) int64 {
	switch {
	case !m.DeliverAt.IsZero():
		return m.DeliverAt.UnixNano()
	case m.DeliverAfter > 0:
		at := now.Add(m.DeliverAfter)
		if r := at.Truncate(time.Millisecond); r.Before(at) {
			at = r.Add(time.Millisecond)
		}
		return at.UnixNano()
	}
	return 0
}

// Producer sends messages to one topic (all partitions of a partitioned
// topic). It is safe for concurrent use; messages sent from one goroutine to
// one partition are persisted in the order sent.
type Producer struct {
	c     *Client
	topic string
	cfg   producerConfig
	parts []*partitionProducer

	rr struct {
		sync.Mutex
		idx   int
		count int
		since time.Time
	}
	closeOnce sync.Once
}

// NewProducer opens a producer on topic (tenant/namespace/name, or a bare
// name in public/default). It connects to the owner of every partition
// before returning: an unknown topic fails here with ErrTopicNotFound (unless
// the server creates topics on first use). ctx bounds these connects only.
func (c *Client) NewProducer(ctx context.Context, topicName string, opts ...ProducerOption) (*Producer, error) {
	cfg := defaultProducerConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	name, err := topic.Parse(topicName)
	if err != nil {
		return nil, err
	}
	n, err := c.partitions(ctx, name.String())
	if err != nil {
		return nil, err
	}
	p := &Producer{c: c, topic: name.String(), cfg: cfg}
	p.rr.since = time.Now()
	if err := p.open(ctx, name, n); err != nil {
		return nil, err
	}
	if err := c.register(p); err != nil {
		p.closeParts()
		return nil, err
	}
	return p, nil
}

// open starts one partition producer per partition (one for a
// non-partitioned topic), all under the first one's name.
func (p *Producer) open(ctx context.Context, name topic.Name, partitions int) error {
	names := []string{name.String()}
	if partitions > 0 {
		names = names[:0]
		for i := range partitions {
			names = append(names, name.Partition(i).String())
		}
	}
	producerName := p.cfg.name
	for i, t := range names {
		pp := newPartitionProducer(p.c, &p.cfg, t, int32(i), producerName)
		if err := pp.start(ctx); err != nil {
			p.closeParts()
			return err
		}
		producerName = pp.name()
		p.parts = append(p.parts, pp)
	}
	return nil
}

// Topic returns the producer's topic (canonical name).
func (p *Producer) Topic() string { return p.topic }

// Name returns the producer's name (assigned by the server unless set).
func (p *Producer) Name() string { return p.parts[0].name() }

// Partitions returns the number of partitions produced to (1 for a
// non-partitioned topic).
func (p *Producer) Partitions() int { return len(p.parts) }

// Send sends msg and waits for its receipt. Cancelling ctx stops the wait,
// not the send: a message already queued may still be persisted.
func (p *Producer) Send(ctx context.Context, msg *ProducerMessage) (MessageID, error) {
	type result struct {
		id  MessageID
		err error
	}
	done := make(chan result, 1)
	p.SendAsync(ctx, msg, func(id MessageID, _ *ProducerMessage, err error) { done <- result{id, err} })
	select {
	case r := <-done:
		return r.id, r.err
	case <-ctx.Done():
		return MessageID{}, ctx.Err()
	}
}

// SendAsync queues msg and returns; cb (which may be nil) is called once with
// the message's id or an error. While the pending limits are reached it
// blocks until room frees up (or fails at once with ErrProducerQueueFull
// under ProducerFailFast). ctx covers only that wait: once queued, a message
// is retried across reconnects until it is acknowledged, fails with a
// non-retriable error, or the producer closes (ErrClosed). When the message
// cannot be queued, cb is called before SendAsync returns, on the caller's
// goroutine; otherwise it runs on the producer's receive goroutine, in send
// order, and must not block.
func (p *Producer) SendAsync(ctx context.Context, msg *ProducerMessage, cb func(MessageID, *ProducerMessage, error)) {
	if msg == nil {
		if cb != nil {
			cb(MessageID{}, msg, invalidArg("nil message"))
		}
		return
	}
	if err := p.route(msg).enqueue(ctx, msg, cb); err != nil && cb != nil {
		cb(MessageID{}, msg, err)
	}
}

// route picks msg's partition: by key hash, else round-robin per batch.
func (p *Producer) route(msg *ProducerMessage) *partitionProducer {
	n := len(p.parts)
	if n == 1 {
		return p.parts[0]
	}
	if msg.Key != "" {
		return p.parts[PartitionForKey(msg.Key, n)]
	}
	p.rr.Lock()
	defer p.rr.Unlock()
	if now := time.Now(); p.rr.count >= p.cfg.batchMaxMessages || now.Sub(p.rr.since) >= p.cfg.linger {
		p.rr.idx = (p.rr.idx + 1) % n
		p.rr.count, p.rr.since = 0, now
	}
	p.rr.count++
	return p.parts[p.rr.idx]
}

// PartitionForKey returns the partition of key among n partitions:
// fnv-1a 32 of the key, modulo n. It is stable across processes and versions.
func PartitionForKey(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// Flush sends every queued message at once and waits until every message
// sent before the call is acknowledged or failed. Cancelling ctx stops the
// wait only.
func (p *Producer) Flush(ctx context.Context) error {
	var errs []error
	for _, pp := range p.parts {
		errs = append(errs, pp.flush(ctx))
	}
	return errors.Join(errs...)
}

// Close stops the producer. Messages not yet acknowledged fail with
// ErrClosed (call Flush first to wait for them). It blocks until the
// producer's goroutines exit; it must not be called from a SendAsync
// callback.
func (p *Producer) Close() error {
	p.closeOnce.Do(func() {
		p.closeParts()
		p.c.unregister(p)
	})
	return nil
}

func (p *Producer) closeParts() {
	for _, pp := range p.parts {
		pp.close()
	}
}
