package client

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mq/strata/serving/servingpb"
)

// Reader reads a topic through a non-durable subscription: no cursor is kept
// on the server, nothing is acknowledged, and a reconnect resumes after the
// last message handed out.
type Reader struct {
	cons *Consumer

	mu        sync.Mutex
	compacted []*Message // ReaderReadCompacted: those not handed out yet
}

// NewReader opens a reader on topic, starting (by default) at the earliest
// message; see ReaderStartLatest, ReaderStartMessageID, ReaderStartTime.
// ctx bounds the initial subscribe only.
func (c *Client) NewReader(ctx context.Context, topicName string, opts ...ReaderOption) (*Reader, error) {
	cfg := defaultReaderConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tmpl := &servingpb.Subscribe{
		Subscription:    randomName("reader-"),
		Type:            servingpb.SubscriptionType_EXCLUSIVE,
		InitialPosition: servingpb.InitialPosition(cfg.position),
		ConsumerName:    cfg.name,
		NonDurable:      true,
	}
	var (
		compacted []*Message
		conts     map[int32]*servingpb.MessageId
	)
	if cfg.compacted {
		var err error
		if compacted, conts, err = c.readAllCompacted(ctx, topicName); err != nil {
			return nil, err
		}
	}
	startFor := func(partition int32, s *servingpb.Subscribe) {
		switch {
		case conts[partition] != nil:
			s.StartMessageId = conts[partition]
		case cfg.startID != nil && cfg.startID.Partition == partition:
			s.StartMessageId = cfg.startID.proto()
		case cfg.startID != nil:
			s.InitialPosition = servingpb.InitialPosition_EARLIEST
		case !cfg.startTime.IsZero():
			s.StartTimeUnixNano = cfg.startTime.UnixNano()
		}
	}
	cons, err := c.subscribe(ctx, topicName, tmpl, subscribeOpts{typ: Exclusive, queueSize: cfg.queueSize,
		ackGrouping: 10 * time.Millisecond, startFor: startFor, discover: true,
		redelivery: consumerConfig{decryptKeys: cfg.decryptKeys, cryptoFailure: cfg.cryptoFailure}})
	if err != nil {
		return nil, err
	}
	return &Reader{cons: cons, compacted: compacted}, nil
}

// readAllCompacted reads the compacted messages of every partition of
// topicName, and where each partition goes on from (none: its earliest).
func (c *Client) readAllCompacted(ctx context.Context, topicName string) ([]*Message, map[int32]*servingpb.MessageId, error) {
	parts, err := c.partitionNames(ctx, topicName)
	if err != nil {
		return nil, nil, err
	}
	var all []*Message
	conts := map[int32]*servingpb.MessageId{}
	for i, p := range parts {
		msgs, cont, err := c.readCompacted(ctx, p, int32(i))
		if err != nil {
			return nil, nil, err
		}
		all, conts[int32(i)] = append(all, msgs...), cont
	}
	return all, conts, nil
}

// nextCompacted hands out the next compacted message not read yet, if any.
func (r *Reader) nextCompacted() *Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.compacted) == 0 {
		return nil
	}
	m := r.compacted[0]
	r.compacted[0], r.compacted = nil, r.compacted[1:]
	return m
}

func (r *Reader) dropCompacted() {
	r.mu.Lock()
	r.compacted = nil
	r.mu.Unlock()
}

// Topic returns the reader's topic (canonical name).
func (r *Reader) Topic() string { return r.cons.topic }

// Next returns the next message; see Consumer.Receive. The message is
// acknowledged on the reader's non-durable subscription (which frees the
// server's per-consumer unacknowledged budget; nothing is stored).
func (r *Reader) Next(ctx context.Context) (*Message, error) {
	for m := r.nextCompacted(); m != nil; m = r.nextCompacted() {
		if !m.Encrypted || r.cons.dec == nil {
			return m, nil
		}
		err := r.cons.dec.open(m)
		switch {
		case err == nil:
			m.Encrypted = false
			return m, nil
		case r.cons.dec.action == CryptoDiscard:
			continue
		case r.cons.dec.action == CryptoConsume:
			return m, nil
		}
		// A compacted message is not read again: after the error, the
		// reader goes on with the next.
		return nil, fmt.Errorf("message %v: %w", m.ID, err)
	}
	m, err := r.cons.Receive(ctx)
	if err == nil {
		_ = r.cons.AckID(m.ID) // lost on a reconnect: the resubscribe starts after m anyway
	}
	return m, err
}

// HasNext reports whether Next has a message to return without waiting for
// one to be published: one is buffered, or the topic (some partition)
// holds an entry after the last message Next returned (after the reader's
// start when it returned none), as Pulsar's HasNext. It asks the server
// only when nothing is buffered. A typical use reads a topic to its end:
//
//	for {
//		more, err := r.HasNext(ctx)
//		if err != nil || !more {
//			break
//		}
//		m, err := r.Next(ctx)
//		...
//	}
//
// Messages published meanwhile may make a later HasNext true again.
func (r *Reader) HasNext(ctx context.Context) (bool, error) {
	r.mu.Lock()
	buffered := len(r.compacted) > 0
	r.mu.Unlock()
	if buffered {
		return true, nil
	}
	c := r.cons
	ctx, done := c.c.opContext(ctx)
	defer done()
	for _, pc := range c.partsNow() {
		var more bool
		err := c.retrying(ctx, func() (err error) {
			more, err = pc.hasMore(ctx)
			return err
		})
		if err != nil || more {
			return more, err
		}
	}
	return false, nil
}

// Messages iterates over messages until ctx ends or the reader closes; the
// last pair carries that error.
func (r *Reader) Messages(ctx context.Context) iter.Seq2[*Message, error] {
	return func(yield func(*Message, error) bool) {
		for {
			m, err := r.Next(ctx)
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

// Seek moves the reader to id (inclusive); see Consumer.Seek.
func (r *Reader) Seek(ctx context.Context, id MessageID) error {
	r.dropCompacted()
	return r.cons.Seek(ctx, id)
}

// SeekTime moves the reader to the first message at or after t.
func (r *Reader) SeekTime(ctx context.Context, t time.Time) error {
	r.dropCompacted()
	return r.cons.SeekTime(ctx, t)
}

// SeekEarliest moves the reader to the oldest message retained.
func (r *Reader) SeekEarliest(ctx context.Context) error {
	r.dropCompacted()
	return r.cons.SeekEarliest(ctx)
}

// SeekLatest moves the reader after the last message written.
func (r *Reader) SeekLatest(ctx context.Context) error {
	r.dropCompacted()
	return r.cons.SeekLatest(ctx)
}

// Close stops the reader and blocks until its goroutines exit.
func (r *Reader) Close() error { return r.cons.Close() }

func cloneSubscribe(s *servingpb.Subscribe) *servingpb.Subscribe { return proto.CloneOf(s) }
