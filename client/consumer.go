package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Message is a received message.
type Message struct {
	ID MessageID
	// Topic is the topic (for a partitioned topic, the partition) it came from.
	Topic           string
	Key             string
	Properties      map[string]string
	Payload         []byte
	PublishTime     time.Time
	EventTime       time.Time // zero when the producer set none
	ProducerName    string
	SequenceID      uint64
	RedeliveryCount uint32
	// SchemaVersion is the version of the topic's schema the producer
	// wrote it with (ProducerSchema), -1 when it had none.
	SchemaVersion int64
	// Encrypted is set on a message whose payload is still encrypted: the
	// consumer (or Reader) has no decryption option, or it failed under
	// CryptoConsume.
	Encrypted bool
	// epoch is the subscription's cursor epoch on the stream that
	// delivered it, sent with its ack (acks.go).
	epoch uint64
}

// Consumer receives the messages of one subscription on one topic (every
// partition of a partitioned topic, merged). It is safe for concurrent use.
type Consumer struct {
	c       *Client
	topic   string
	sub     string
	subType SubscriptionType
	parts   partSet[*partitionConsumer] // grows when partitions are added (partitions.go)
	watcher *partitionWatcher
	tmpl    *servingpb.Subscribe // for partitions added later
	opts    subscribeOpts
	notify  chan struct{} // a message was queued (capacity 1)
	closed  chan struct{}

	redelivery redelivery     // nack delay, ack timeout, dead letters (redelivery.go)
	dec        *decryptor     // ConsumerDecryption (nil: payloads handed out as they are)
	chunks     chunkAssembler // chunked messages being put together (chunking.go)
	// retry consumes the retry-letter topic (RetryLetterPolicy); its
	// messages are handed out by this consumer's Receive. nil without one.
	retry *Consumer

	closeOnce sync.Once
	mu        struct {
		sync.Mutex
		rr         int
		retryFirst bool  // next takes from the retry topic first
		err        error // terminal failure of a partition
	}
}

// Subscribe opens a consumer of subscription on topic, creating the
// subscription (at ConsumerInitialPosition) when it does not exist. It
// subscribes to every partition before returning; ctx bounds that only.
func (c *Client) Subscribe(ctx context.Context, topicName, subscription string, opts ...ConsumerOption) (*Consumer, error) {
	cfg, err := consumerConfigOf(opts)
	if err != nil {
		return nil, err
	}
	return c.subscribeWith(ctx, topicName, subscription, cfg, nil)
}

// consumerConfigOf applies opts to the defaults and validates the result.
func consumerConfigOf(opts []ConsumerOption) (consumerConfig, error) {
	cfg := defaultConsumerConfig()
	for _, o := range opts {
		o(&cfg)
	}
	return cfg, cfg.validate()
}

// subscribeWith is Subscribe with its options applied; notify, when set,
// is the channel the consumer wakes receivers with (a MultiConsumer's).
func (c *Client) subscribeWith(ctx context.Context, topicName, subscription string, cfg consumerConfig, notify chan struct{}) (*Consumer, error) {
	// Before the lookup, which creates a topic on first use: a name the
	// node would refuse must leave nothing behind.
	if err := topic.CheckSubscription(subscription); err != nil {
		return nil, err
	}
	if cfg.name == "" && cfg.subType == Failover {
		// One name on every partition: the server picks each partition's
		// active consumer by name, and the partitions then spread evenly
		// over the consumers.
		cfg.name = randomName("consumer-")
	}
	sub := &servingpb.Subscribe{
		Subscription:    subscription,
		Type:            servingpb.SubscriptionType(cfg.subType),
		InitialPosition: servingpb.InitialPosition(cfg.position),
		ConsumerName:    cfg.name,
		ReadCompacted:   cfg.compacted,
		Schema:          cfg.schema.proto(),
	}
	// A bad dead-letter or retry topic fails in subscribe before any
	// partition subscribes (startRedelivery).
	cons, err := c.subscribe(ctx, topicName, sub, subscribeOpts{typ: cfg.subType, queueSize: cfg.queueSize, ackGrouping: cfg.ackGrouping,
		redelivery: cfg, discover: true, notify: notify})
	if err != nil || cfg.retry == nil {
		return cons, err
	}
	if err := cons.subscribeRetry(ctx, cfg); err != nil {
		_ = cons.Close()
		return nil, err
	}
	return cons, nil
}

// subscribeRetry opens the consumer of c's retry-letter topic: the same
// subscription (created at the earliest message), Shared (KeyShared when
// c's is), since only those deliver a message at its delivery time; with
// c's receive queue size, ack grouping, nack delays and ack timeout, and
// c's dead-letter topic. It shares c's notify channel, so that c's Receive
// wakes for its messages.
func (c *Consumer) subscribeRetry(ctx context.Context, cfg consumerConfig) error {
	typ := Shared
	if cfg.subType == KeyShared {
		typ = KeyShared
	}
	rcfg := cfg
	rcfg.subType, rcfg.retry, rcfg.compacted = typ, nil, false
	if d := c.redelivery.dlq; d != nil {
		rcfg.deadLetter = &DeadLetterPolicy{MaxDeliveries: d.MaxDeliveries, Topic: d.Topic}
	}
	sub := cloneSubscribe(c.tmpl)
	sub.Type = servingpb.SubscriptionType(typ)
	sub.ReadCompacted = false // a retry topic is never compacted, and Shared
	// Every retry published is meant for the subscription, also one
	// published before its subscription on the retry topic existed.
	sub.InitialPosition = servingpb.InitialPosition_EARLIEST
	r, err := c.c.subscribe(ctx, c.redelivery.retryTopic, sub, subscribeOpts{typ: typ, queueSize: cfg.queueSize, ackGrouping: cfg.ackGrouping,
		redelivery: rcfg, discover: true, notify: c.notify, retryOf: c})
	if err != nil {
		return err
	}
	c.retry = r
	return nil
}

// subscribeOpts are the settings shared by consumers and readers.
type subscribeOpts struct {
	typ         SubscriptionType
	queueSize   int
	ackGrouping time.Duration
	// startFor, when set, adjusts the subscribe request of each partition.
	startFor func(int32, *servingpb.Subscribe)
	// redelivery holds the nack delay, ack timeout and dead-letter policy
	// (consumers only).
	redelivery consumerConfig
	// discover makes the consumer take on partitions added to the topic
	// later.
	discover bool
	// notify, when set, is the channel the consumer wakes Receive with
	// (shared with the consumer whose retry topic this one reads).
	notify chan struct{}
	// retryOf is set on the consumer of another one's retry-letter topic:
	// its messages' ids are marked, to route acks and nacks back to it.
	retryOf *Consumer
}

// subscribe opens one partition consumer per partition.
func (c *Client) subscribe(ctx context.Context, topicName string, tmpl *servingpb.Subscribe, o subscribeOpts) (*Consumer, error) {
	name, err := topic.Parse(topicName)
	if err != nil {
		return nil, err
	}
	n, err := c.partitionsToOpen(ctx, name.String())
	if err != nil {
		return nil, err
	}
	cons := &Consumer{c: c, topic: name.String(), sub: tmpl.GetSubscription(), subType: o.typ, tmpl: tmpl, opts: o,
		notify: o.notify, closed: make(chan struct{})}
	if k := o.redelivery.decryptKeys; k != nil {
		cons.dec = newDecryptor(k, o.redelivery.cryptoFailure)
	}
	if cons.notify == nil {
		cons.notify = make(chan struct{}, 1)
	}
	// Before the partitions start: their streams use it.
	if err := cons.startRedelivery(o.redelivery); err != nil {
		return nil, err
	}
	topics := []string{name.String()}
	if n > 0 {
		topics = topics[:0]
		for i := range n {
			topics = append(topics, name.Partition(i).String())
		}
	}
	for i, tp := range topics {
		s := cloneSubscribe(tmpl)
		s.Topic = tp
		if o.startFor != nil {
			o.startFor(int32(i), s)
		}
		if err := cons.openPart(ctx, s, i); err != nil {
			cons.stopRedelivery()
			cons.closeParts()
			return nil, err
		}
	}
	// Before register: a Client.Close from then on closes the watcher too.
	if o.discover {
		cons.watcher = c.watchPartitions(cons.topic, n, cons.addPartitions)
	}
	if err := c.register(cons); err != nil {
		cons.watcher.close()
		cons.stopRedelivery()
		cons.closeParts()
		return nil, err
	}
	return cons, nil
}

// partsNow is the current partition consumers, by partition index.
func (c *Consumer) partsNow() []*partitionConsumer { return c.parts.now() }

// openPart starts the partition consumer of s, index i, and adds it.
func (c *Consumer) openPart(ctx context.Context, s *servingpb.Subscribe, i int) error {
	return c.parts.add(func([]*partitionConsumer) (*partitionConsumer, error) {
		pc := newPartitionConsumer(c, s.GetTopic(), int32(i), s, c.opts.queueSize, c.opts.ackGrouping)
		if id := s.GetStartMessageId(); id != nil && id.GetBatch() > 0 {
			// The server starts at the entry: skip the batch before the id.
			pc.mu.last = &MessageID{Ledger: id.GetLedger(), Entry: id.GetEntry(), Batch: id.GetBatch() - 1, Partition: int32(i)}
			pc.mu.lastIsStart = true
		}
		return pc, pc.start(ctx)
	})
}

// addPartitions subscribes to the partitions of the topic up to n. A new
// partition is consumed from its start: the server created the
// subscription's cursors there when it added the partitions, and a
// subscription created now must not skip what was produced before.
func (c *Consumer) addPartitions(ctx context.Context, n int) error {
	name, err := topic.Parse(c.topic)
	if err != nil {
		return err
	}
	for i := len(c.partsNow()); i < n; i++ {
		s := cloneSubscribe(c.tmpl)
		s.Topic = name.Partition(i).String()
		s.InitialPosition = servingpb.InitialPosition_EARLIEST
		if c.opts.startFor != nil { // a reader's start time applies there too
			c.opts.startFor(int32(i), s)
		}
		if err := c.openPart(ctx, s, i); err != nil {
			return err
		}
	}
	c.wake()
	return nil
}

// Topic returns the consumer's topic (canonical name).
func (c *Consumer) Topic() string { return c.topic }

// Subscription returns the subscription's name.
func (c *Consumer) Subscription() string { return c.sub }

// Receive returns the next message, waiting until one arrives, ctx ends
// (ctx.Err()), the consumer closes (ErrClosed) or fails for good (for example
// ErrTopicNotFound after the topic was deleted). Cancelling ctx loses nothing.
func (c *Consumer) Receive(ctx context.Context) (*Message, error) {
	for {
		if m, err := c.tryReceive(ctx); m != nil || err != nil {
			return m, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.closed:
			return nil, ErrClosed
		case <-c.notify:
		}
	}
}

// tryReceive returns the next message queued, without waiting for one
// (nil, nil when there is none), or the consumer's terminal failure.
func (c *Consumer) tryReceive(ctx context.Context) (*Message, error) {
	for {
		m, from := c.next()
		if m == nil {
			break
		}
		if from.reassembles() && isChunk(m) {
			if m = from.assemble(m); m == nil {
				continue
			}
		}
		ok, err := from.handOut(ctx, m)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if m.Encrypted {
			if keep, err := from.decrypt(m); err != nil || !keep {
				if err != nil {
					return nil, err
				}
				continue
			}
		}
		c.beforeConsume(m)
		return m, nil
	}
	err := c.failure()
	if err == nil && c.retry != nil {
		err = c.retry.failure()
	}
	if err == nil && c.HasReachedEndOfTopic() {
		err = ErrTopicTerminated
	}
	return nil, err
}

// HasReachedEndOfTopic reports whether the topic (every partition) was
// terminated and this consumer has been sent every message of it (Pulsar's
// hasReachedEndOfTopic). Receive then answers ErrTopicTerminated once it
// has handed out what it holds; messages given back later (nacks, ack
// timeouts) still come to the calls after.
func (c *Consumer) HasReachedEndOfTopic() bool {
	parts := c.partsNow()
	if len(parts) == 0 {
		return false
	}
	for _, pc := range parts {
		if !pc.ended.Load() {
			return false
		}
	}
	return true
}

// Messages iterates over received messages until ctx ends or the consumer
// closes; the last pair carries that error. Breaking out of the loop loses
// nothing.
//
//	for msg, err := range consumer.Messages(ctx) { ... }
func (c *Consumer) Messages(ctx context.Context) iter.Seq2[*Message, error] {
	return func(yield func(*Message, error) bool) {
		for {
			m, err := c.Receive(ctx)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(m, nil) {
				return
			}
		}
	}
}

// BatchReceivePolicy bounds one BatchReceive, as Pulsar's: it returns once
// it holds MaxMessages messages, or MaxBytes of payload (the message that
// crosses it included: a message is never held back for its size), or
// Timeout after the first message came. Zero values take the defaults.
type BatchReceivePolicy struct {
	MaxMessages int           // default 100
	MaxBytes    int           // default 10 MiB
	Timeout     time.Duration // default 100 ms
}

// BatchReceive waits for at least one message (until ctx ends, the
// consumer closes or fails, as Receive does) and returns it with those
// that follow within the policy's bounds, in the order Receive would have
// returned them: a consumer that writes to a database in bulk, as Kafka's
// poll does. Once it holds a message it returns what it holds and no error
// (an error then comes with the next call), so nothing handed out is left
// unreturned.
func (c *Consumer) BatchReceive(ctx context.Context, p BatchReceivePolicy) ([]*Message, error) {
	if p.MaxMessages < 0 || p.MaxBytes < 0 || p.Timeout < 0 {
		return nil, invalidArg("batch receive limits must not be negative")
	}
	if p.MaxMessages == 0 {
		p.MaxMessages = 100
	}
	if p.MaxBytes == 0 {
		p.MaxBytes = 10 << 20
	}
	if p.Timeout == 0 {
		p.Timeout = 100 * time.Millisecond
	}
	first, err := c.Receive(ctx)
	if err != nil {
		return nil, err
	}
	msgs, bytes := []*Message{first}, len(first.Payload)
	rest, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	// Receive returns queued messages without looking at its ctx, so the
	// deadline is checked here too.
	for len(msgs) < p.MaxMessages && bytes < p.MaxBytes && rest.Err() == nil {
		m, err := c.Receive(rest)
		if err != nil {
			break
		}
		msgs, bytes = append(msgs, m), bytes+len(m.Payload)
	}
	return msgs, nil
}

// next takes a message from the topic or, with a retry-letter topic, from
// either in turn; it answers the consumer the message came from.
func (c *Consumer) next() (*Message, *Consumer) {
	if c.retry == nil {
		return c.pop(), c
	}
	c.mu.Lock()
	first, second := c, c.retry
	if c.mu.retryFirst = !c.mu.retryFirst; c.mu.retryFirst {
		first, second = second, first
	}
	c.mu.Unlock()
	if m := first.pop(); m != nil {
		return m, first
	}
	if m := second.pop(); m != nil {
		return m, second
	}
	return nil, nil
}

func (c *Consumer) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.err
}

// pop takes a message from the partitions in turn.
func (c *Consumer) pop() *Message {
	c.mu.Lock()
	start := c.mu.rr
	parts := c.partsNow()
	c.mu.rr = (c.mu.rr + 1) % len(parts)
	c.mu.Unlock()
	for i := range parts {
		m, left := parts[(start+i)%len(parts)].pop()
		if m != nil {
			m.ID.retry = c.opts.retryOf != nil
			if left > 0 || len(parts) > 1 {
				c.wake()
			}
			return m
		}
	}
	return nil
}

func (c *Consumer) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *Consumer) fail(err error) {
	c.mu.Lock()
	if c.mu.err == nil {
		c.mu.err = err
	}
	c.mu.Unlock()
	c.wake()
}

func (c *Consumer) part(id MessageID) (*partitionConsumer, error) {
	if c.isClosed() {
		return nil, ErrClosed
	}
	parts := c.partsNow()
	if id.Partition < 0 || int(id.Partition) >= len(parts) {
		return nil, invalidArg("message id %v: partition %d out of range", id, id.Partition)
	}
	return parts[id.Partition], nil
}

// Ack acknowledges msg. Acks are gathered for ConsumerAckGroupingTime and
// sent together (with a grouping time of 0, at once). An ack that cannot
// be sent, because msg's partition is reconnecting (its topic moved, its
// owner changed, a connection broke) or the send failed, is kept and sent
// on the partition's next stream before the consumer takes messages
// there, so that msg does not come again; Ack returns nil all the same
// (ErrClosed after Close). At most 100,000 acks are kept per partition:
// past that the oldest are dropped and their messages come again
// (at-least-once). A seek drops them, and so does a cursor move by the
// server (an admin reset, another consumer's seek), with the acks made
// until the partition is back; Close waits up to 2 s for a reconnecting
// partition to send them. An ack goes with the cursor epoch of the stream
// that delivered msg, and the server drops it if the cursor moved since
// (a seek or reset, however long ago and on whichever node): msg comes
// again, as the move asked.
func (c *Consumer) Ack(msg *Message) error { return c.onAck(msg.ID, c.ack(msg.ID, msg.epoch, false)) }

// AckID acknowledges the message with id (id.Partition picks the
// partition). Unlike Ack, it does not know which stream delivered the
// message: an AckID made after a seek or reset of a message delivered
// before it acknowledges that message all the same (Ack's would be
// dropped, and the message come again).
func (c *Consumer) AckID(id MessageID) error { return c.onAck(id, c.ack(id, 0, false)) }

// AckCumulative acknowledges msg and every message before it in its
// partition, at once, with the acks gathered before it; while the
// partition reconnects, the last one is kept as Ack's are. Not allowed on
// Shared and KeyShared subscriptions.
func (c *Consumer) AckCumulative(msg *Message) error { return c.onAck(msg.ID, c.ackCumulative(msg)) }

func (c *Consumer) ackCumulative(msg *Message) error {
	if msg.ID.retry && c.retry != nil {
		return c.retry.ackCumulative(msg)
	}
	if c.subType == Shared || c.subType == KeyShared {
		return invalidArg("cumulative ack on a %v subscription", c.subType)
	}
	return c.ack(msg.ID, msg.epoch, true)
}

// ack acknowledges id, delivered at epoch (0: unknown, the partition's
// latest is taken).
func (c *Consumer) ack(id MessageID, epoch uint64, cumulative bool) error {
	if id.retry && c.retry != nil {
		return c.retry.ack(id, epoch, cumulative)
	}
	pc, err := c.part(id)
	if err != nil {
		return err
	}
	c.acked(id, cumulative)
	chunks := c.chunks.chunkIDs(id, true)
	if cumulative {
		pc.ackCumulative(chunks[len(chunks)-1], epoch)
		return nil
	}
	for _, cid := range chunks {
		pc.ack(cid, epoch)
	}
	return nil
}

// Nack asks for msg to be redelivered (after ConsumerNackRedeliveryDelay).
// Only msg's redelivery count rises; on a subscription that owns whole
// entries the server also sends again the rest of msg's batch not yet
// acknowledged, and the consumer drops the copies the application holds
// or is done with (docs/client.md, "Batches").
func (c *Consumer) Nack(msg *Message) error {
	return c.onNack(msg.ID, c.nack(msg.ID, msg.RedeliveryCount))
}

// NackID asks for the message with id to be redelivered (after the nack
// delay of a first delivery).
func (c *Consumer) NackID(id MessageID) error { return c.onNack(id, c.nack(id, 0)) }

// Seek moves the subscription of id's partition to id's entry (the server
// positions by entry, so earlier messages of the same batch come again) and
// waits for the server to confirm; buffered messages are dropped. The
// subscription's other consumers are disconnected, as in Pulsar, and drop
// theirs too. An id whose ledger is not the partition's fails with
// ErrInvalidArgument (one older than every ledger retained means the oldest
// message retained). A partition reconnecting is waited for, within ctx and
// the operation timeout; cancelling ctx stops the wait (the seek may still
// happen). After Close, ErrClosed.
func (c *Consumer) Seek(ctx context.Context, id MessageID) error {
	if id.retry && c.retry != nil {
		return c.retry.Seek(ctx, id)
	}
	pc, err := c.part(id)
	if err != nil {
		return err
	}
	pc.flushAcks()
	ctx, done := c.c.opContext(ctx)
	defer done()
	return c.retrying(ctx, func() error {
		return pc.seek(ctx, &servingpb.Seek{To: &servingpb.Seek_MessageId{MessageId: id.proto()}})
	})
}

// SeekTime moves the subscription, on every partition, to the first message
// published at or after t (the end when there is none). Cancelling ctx stops
// the wait; partitions already moved stay moved.
func (c *Consumer) SeekTime(ctx context.Context, t time.Time) error {
	return c.seekAll(ctx, &servingpb.Seek{To: &servingpb.Seek_TimeUnixNano{TimeUnixNano: t.UnixNano()}})
}

// seekAll seeks every partition to s, in turn.
func (c *Consumer) seekAll(ctx context.Context, s *servingpb.Seek) error {
	if c.isClosed() {
		return ErrClosed
	}
	ctx, done := c.c.opContext(ctx)
	defer done()
	for _, pc := range c.partsNow() {
		pc.flushAcks()
		if err := c.retrying(ctx, func() error { return pc.seek(ctx, s) }); err != nil {
			return err
		}
	}
	return nil
}

func (c *Consumer) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Unsubscribe deletes the subscription, on every partition, and closes the
// consumer, as Pulsar's Unsubscribe: the subscription's cursor and backlog
// are dropped, and the topic no longer keeps messages for it. It fails with
// ErrConsumerBusy while other consumers are attached to the subscription,
// and the consumer stays open; on a partitioned topic, the partitions before
// the one that failed were unsubscribed and are no longer consumed.
// Messages received and not acknowledged are not redelivered to anyone. A
// partition whose stream is reconnecting is retried within ctx and the
// operation timeout. With a retry-letter topic, the subscription is deleted
// there too.
func (c *Consumer) Unsubscribe(ctx context.Context) error {
	ctx, done := c.c.opContext(ctx)
	defer done()
	parts := c.partsNow()
	if c.retry != nil {
		parts = append(slices.Clone(parts), c.retry.partsNow()...)
	}
	for _, pc := range parts {
		if err := c.retrying(ctx, func() error { return pc.unsubscribe(ctx) }); err != nil {
			return err
		}
	}
	return c.Close()
}

// retrying calls f until it succeeds, fails for good or ctx ends, backing
// off between tries: a partition's stream may be reconnecting (a seek, like
// an unsubscribe, means the same when sent again).
func (c *Consumer) retrying(ctx context.Context, f func() error) error {
	bo := c.c.newBackoff()
	for {
		err := f()
		// ConsumerBusy is retriable for a subscribe, not for an
		// unsubscribe: the other consumers stay until their owners close
		// them.
		if err == nil || errors.Is(err, ErrConsumerBusy) || !errcode.IsRetriable(err) || !bo.wait(ctx) {
			return err
		}
	}
}

// SeekEarliest moves the subscription, on every partition, to the oldest
// message retained; SeekLatest moves it after the last message written (the
// backlog is skipped, as by a clear-backlog). Both wait for the server, and
// drop what was buffered; cancelling ctx stops the wait, and partitions
// already moved stay moved.
func (c *Consumer) SeekEarliest(ctx context.Context) error { return c.seekEdge(ctx, Earliest) }

// SeekLatest: see SeekEarliest.
func (c *Consumer) SeekLatest(ctx context.Context) error { return c.seekEdge(ctx, Latest) }

func (c *Consumer) seekEdge(ctx context.Context, p InitialPosition) error {
	return c.seekAll(ctx, &servingpb.Seek{To: &servingpb.Seek_Position{Position: servingpb.InitialPosition(p)}})
}

// Close stops the consumer (the subscription stays). It blocks until the
// consumer's goroutines exit; Receive then returns ErrClosed.
func (c *Consumer) Close() error {
	c.closeOnce.Do(func() {
		if c.retry != nil {
			_ = c.retry.Close()
		}
		close(c.closed)
		c.watcher.close()
		c.parts.closeAdding()
		c.stopRedelivery()
		c.closeParts()
		c.c.unregister(c)
	})
	return nil
}

// closeParts closes the partitions together, as the producer's do
// (Producer.closeParts).
func (c *Consumer) closeParts() {
	var wg sync.WaitGroup
	for _, pc := range c.partsNow() {
		wg.Go(pc.close)
	}
	wg.Wait()
}

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
