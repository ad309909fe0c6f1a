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
	c       *Client
	topic   string
	cfg     producerConfig
	parts   partSet[*partitionProducer] // grows when partitions are added (partitions.go)
	watcher *partitionWatcher
	// partitioned: the topic has partitions (a router applies), even
	// while it has only one.
	partitioned bool
	// enc seals payloads (ProducerEncryption; nil: sent as given).
	enc *encryptor

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
	n, err := c.partitionsToOpen(ctx, name.String())
	if err != nil {
		return nil, err
	}
	p := &Producer{c: c, topic: name.String(), cfg: cfg, partitioned: n > 0}
	if len(cfg.encryption) > 0 {
		if p.enc, err = newEncryptor(cfg.encryption); err != nil {
			return nil, err
		}
	}
	p.rr.since = time.Now()
	if n == 0 {
		err = p.openPart(ctx, name.String(), 0)
	} else {
		err = p.addPartitions(ctx, n)
	}
	if err != nil {
		p.closeParts()
		return nil, err
	}
	// Before register: a Client.Close from then on closes the watcher too.
	p.watcher = c.watchPartitions(p.topic, n, p.addPartitions)
	if err := c.register(p); err != nil {
		p.watcher.close()
		p.closeParts()
		return nil, err
	}
	return p, nil
}

// partsNow is the current partition producers, by partition index.
func (p *Producer) partsNow() []*partitionProducer { return p.parts.now() }

// openPart starts the partition producer of topic t, index i, under the
// first one's name, and adds it.
func (p *Producer) openPart(ctx context.Context, t string, i int) error {
	return p.parts.add(func(cur []*partitionProducer) (*partitionProducer, error) {
		producerName := p.cfg.name
		if len(cur) > 0 {
			producerName = cur[0].name()
		}
		pp := newPartitionProducer(p.c, &p.cfg, t, int32(i), producerName)
		return pp, pp.start(ctx)
	})
}

// addPartitions opens the partitions of the topic up to n.
func (p *Producer) addPartitions(ctx context.Context, n int) error {
	name, err := topic.Parse(p.topic)
	if err != nil {
		return err
	}
	for i := len(p.partsNow()); i < n; i++ {
		if err := p.openPart(ctx, name.Partition(i).String(), i); err != nil {
			return err
		}
	}
	return nil
}

// Topic returns the producer's topic (canonical name).
func (p *Producer) Topic() string { return p.topic }

// Name returns the producer's name (assigned by the server unless set).
func (p *Producer) Name() string { return p.partsNow()[0].name() }

// Partitions returns the number of partitions produced to (1 for a
// non-partitioned topic); it grows when partitions are added to the topic
// (PartitionsRefresh).
func (p *Producer) Partitions() int { return len(p.partsNow()) }

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
	cb = p.interceptSend(msg, cb)
	out := msg // what goes on the wire: sealed when encrypting
	var err error
	if p.enc != nil {
		if out, err = p.enc.seal(msg); err != nil {
			if cb != nil {
				cb(MessageID{}, msg, err)
			}
			return
		}
		if cb != nil {
			orig, done := msg, cb
			cb = func(id MessageID, _ *ProducerMessage, err error) { done(id, orig, err) }
		}
	}
	pp, err := p.route(out)
	switch {
	case err != nil:
	case p.cfg.chunking:
		err = pp.enqueueChunked(ctx, out, p.cfg.chunkBytes, cb)
	default:
		err = pp.enqueue(ctx, out, cb)
	}
	if err != nil && cb != nil {
		cb(MessageID{}, out, err)
	}
}

// route picks msg's partition: by the ProducerMessageRouter when there is
// one, else by key hash, else round-robin per batch.
func (p *Producer) route(msg *ProducerMessage) (*partitionProducer, error) {
	parts := p.partsNow()
	n := len(parts)
	if r := p.cfg.router; r != nil && p.partitioned {
		i := r(msg, n)
		if i < 0 || i >= n {
			return nil, invalidArg("message router chose partition %d of %d", i, n)
		}
		return parts[i], nil
	}
	if n == 1 {
		return parts[0], nil
	}
	if msg.Key != "" {
		return parts[PartitionForKey(msg.Key, n)], nil
	}
	p.rr.Lock()
	defer p.rr.Unlock()
	if now := time.Now(); p.rr.count >= p.cfg.batchMaxMessages || now.Sub(p.rr.since) >= p.cfg.linger {
		p.rr.idx = (p.rr.idx + 1) % n
		p.rr.count, p.rr.since = 0, now
	}
	p.rr.count++
	return parts[p.rr.idx%n], nil
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
	for _, pp := range p.partsNow() {
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
		p.watcher.close()
		p.parts.closeAdding()
		p.closeParts()
		p.c.unregister(p)
	})
	return nil
}

// closeParts closes the partitions together, as Pulsar's closeAsync does:
// each may wait up to closeGrace for its node, and one after the other
// a hung node would hold Close for a grace a partition.
func (p *Producer) closeParts() {
	var wg sync.WaitGroup
	for _, pp := range p.partsNow() {
		wg.Go(pp.close)
	}
	wg.Wait()
}
