package client

import (
	"context"
	"fmt"
	"iter"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/strata-mq/strata/internal/topic"
)

// MultiConsumer receives the messages of one subscription on several
// topics, merged (Pulsar's multi-topic and pattern consumers, Kafka's
// subscribe to a list or a pattern). Each topic (each partitioned one
// whole) has a Consumer of its own with the options given; they wake one
// shared receiver, so nothing is taken from a topic before Receive hands
// it out. Order is kept within a topic's partition, not across topics.
// It is safe for concurrent use.
type MultiConsumer struct {
	c      *Client
	sub    string
	cfg    consumerConfig
	notify chan struct{}
	closed chan struct{}

	// pattern, when set, is matched against the local names of the topics
	// of namespace at each discovery.
	pattern   *regexp.Regexp
	namespace string
	stop      context.CancelFunc
	done      chan struct{}

	closeOnce sync.Once
	mu        struct {
		sync.Mutex
		byTopic map[string]*Consumer
		order   []string // the topics, for round-robin
		rr      int
	}
}

// SubscribeTopics opens one consumer of subscription on each of topics
// (partitioned ones included), merged into one MultiConsumer; ctx bounds
// the subscribes. It fails, subscribing to none, when one fails.
func (c *Client) SubscribeTopics(ctx context.Context, topics []string, subscription string, opts ...ConsumerOption) (*MultiConsumer, error) {
	if len(topics) == 0 {
		return nil, invalidArg("no topic to subscribe to")
	}
	cfg, err := consumerConfigOf(opts)
	if err != nil {
		return nil, err
	}
	m := newMultiConsumer(c, subscription, cfg)
	for _, t := range topics {
		if err := m.add(ctx, t); err != nil {
			_ = m.Close()
			return nil, err
		}
	}
	return m, nil
}

// SubscribePattern subscribes to every topic of one namespace whose name
// matches pattern, "tenant/namespace/REGEXP" (a bare REGEXP is in
// public/default), the regular expression matching the whole local name:
// "public/default/logs-.*". Every ConsumerPatternDiscovery (1 min) it
// lists the namespace again, subscribes to the topics created since that
// match (at ConsumerInitialPosition: Earliest keeps what they received
// before they were found) and lets deleted ones go (with automatic topic
// creation on, a topic deleted under its consumers is created again by
// their resubscription, as in Pulsar). No match is not an error: the
// consumer waits for one.
func (c *Client) SubscribePattern(ctx context.Context, pattern, subscription string, opts ...ConsumerOption) (*MultiConsumer, error) {
	cfg, err := consumerConfigOf(opts)
	if err != nil {
		return nil, err
	}
	ns, expr := "public/default", pattern
	if i := strings.LastIndexByte(pattern, '/'); i >= 0 {
		ns, expr = pattern[:i], pattern[i+1:]
	}
	if _, _, err := topic.ParseNamespace(ns); err != nil {
		return nil, err
	}
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return nil, invalidArg("topic pattern %q: %v", pattern, err)
	}
	m := newMultiConsumer(c, subscription, cfg)
	m.pattern, m.namespace = re, ns
	if err := m.discover(ctx); err != nil {
		_ = m.Close()
		return nil, err
	}
	dctx, stop := context.WithCancel(context.Background())
	m.stop, m.done = stop, make(chan struct{})
	go m.discoverEvery(dctx, cfg.discovery)
	return m, nil
}

func newMultiConsumer(c *Client, sub string, cfg consumerConfig) *MultiConsumer {
	m := &MultiConsumer{c: c, sub: sub, cfg: cfg, notify: make(chan struct{}, 1), closed: make(chan struct{})}
	m.mu.byTopic = map[string]*Consumer{}
	return m
}

// add subscribes to topicName unless it is already consumed.
func (m *MultiConsumer) add(ctx context.Context, topicName string) error {
	name, err := topic.Canonical(topicName)
	if err != nil {
		return err
	}
	m.mu.Lock()
	_, have := m.mu.byTopic[name]
	m.mu.Unlock()
	if have {
		return nil
	}
	cons, err := m.c.subscribeWith(ctx, name, m.sub, m.cfg, m.notify)
	if err != nil {
		return fmt.Errorf("subscribing to %s: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.closed:
		_ = cons.Close()
		return ErrClosed
	default:
	}
	m.mu.byTopic[name] = cons
	m.mu.order = append(m.mu.order, name)
	select {
	case m.notify <- struct{}{}:
	default:
	}
	return nil
}

// discover subscribes to the matching topics not consumed yet and closes
// the consumers of topics that are gone.
func (m *MultiConsumer) discover(ctx context.Context) error {
	ts, err := m.c.Admin().ListTopics(ctx, m.namespace)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, ti := range ts {
		n, err := topic.Parse(ti.Topic)
		if err != nil {
			continue
		}
		if i, _ := n.PartitionIndex(); i >= 0 || !m.pattern.MatchString(n.Local) {
			continue // partitions come with their topic
		}
		seen[n.String()] = true
		if err := m.add(ctx, n.String()); err != nil {
			return err
		}
	}
	m.mu.Lock()
	var gone []*Consumer
	for name, cons := range m.mu.byTopic {
		if !seen[name] {
			gone = append(gone, cons)
			delete(m.mu.byTopic, name)
			m.mu.order = slices.DeleteFunc(m.mu.order, func(s string) bool { return s == name })
		}
	}
	m.mu.Unlock()
	for _, cons := range gone {
		m.c.cfg.logger.Info("topic no longer matches or exists: leaving it", "topic", cons.Topic(), "subscription", m.sub)
		_ = cons.Close()
	}
	return nil
}

func (m *MultiConsumer) discoverEvery(ctx context.Context, every time.Duration) {
	defer close(m.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		dctx, cancel := context.WithTimeout(ctx, m.c.cfg.opTimeout)
		if err := m.discover(dctx); err != nil && ctx.Err() == nil {
			m.c.cfg.logger.Warn("discovering the topics of a pattern", "namespace", m.namespace, "err", err)
		}
		cancel()
	}
}

// Topics answers the topics consumed now, in the order they were added.
func (m *MultiConsumer) Topics() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.mu.order)
}

// Subscription returns the subscription's name.
func (m *MultiConsumer) Subscription() string { return m.sub }

// Receive returns the next message of any of the topics, waiting until
// one arrives, ctx ends, or the consumer closes (ErrClosed). A topic whose
// consumer fails for good (deleted, say) is left, with a log line, and the
// others go on; with SubscribeTopics, when the last one is left, Receive
// returns its error.
func (m *MultiConsumer) Receive(ctx context.Context) (*Message, error) {
	for {
		m.mu.Lock()
		order := slices.Clone(m.mu.order)
		start := m.mu.rr
		if len(order) > 0 {
			m.mu.rr = (m.mu.rr + 1) % len(order)
		}
		conss := make([]*Consumer, len(order))
		for i, name := range order {
			conss[i] = m.mu.byTopic[name]
		}
		m.mu.Unlock()
		for i := range conss {
			cons := conss[(start+i)%len(conss)]
			msg, err := cons.tryReceive(ctx)
			if msg != nil {
				return msg, nil
			}
			if err != nil {
				if last := m.leave(cons, err); last {
					return nil, err
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-m.closed:
			return nil, ErrClosed
		case <-m.notify:
		}
	}
}

// leave drops a consumer that failed for good; it reports whether it was
// the last of a consumer without a pattern (nothing more can come).
func (m *MultiConsumer) leave(cons *Consumer, err error) bool {
	m.c.cfg.logger.Warn("leaving a topic whose consumer failed", "topic", cons.Topic(), "subscription", m.sub, "err", err)
	m.mu.Lock()
	delete(m.mu.byTopic, cons.Topic())
	m.mu.order = slices.DeleteFunc(m.mu.order, func(s string) bool { return s == cons.Topic() })
	last := len(m.mu.order) == 0 && m.pattern == nil
	m.mu.Unlock()
	_ = cons.Close()
	return last
}

// Messages iterates over received messages until ctx ends or the consumer
// closes; the last pair carries that error.
func (m *MultiConsumer) Messages(ctx context.Context) iter.Seq2[*Message, error] {
	return func(yield func(*Message, error) bool) {
		for {
			msg, err := m.Receive(ctx)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(msg, nil) {
				return
			}
		}
	}
}

// consumerOf answers the consumer of msg's topic (its partitioned topic's,
// for a partition).
func (m *MultiConsumer) consumerOf(msg *Message) (*Consumer, error) {
	n, err := topic.Parse(msg.Topic)
	if err != nil {
		return nil, err
	}
	if i, parent := n.PartitionIndex(); i >= 0 {
		n = parent
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cons := m.mu.byTopic[n.String()]; cons != nil {
		return cons, nil
	}
	return nil, invalidArg("message of %s, which this consumer no longer consumes", msg.Topic)
}

// Ack acknowledges msg on its topic.
func (m *MultiConsumer) Ack(msg *Message) error {
	cons, err := m.consumerOf(msg)
	if err != nil {
		return err
	}
	return cons.Ack(msg)
}

// AckCumulative acknowledges msg and every message before it of its
// topic's partition (Exclusive and Failover subscriptions).
func (m *MultiConsumer) AckCumulative(msg *Message) error {
	cons, err := m.consumerOf(msg)
	if err != nil {
		return err
	}
	return cons.AckCumulative(msg)
}

// Nack gives msg back for redelivery, as Consumer.Nack.
func (m *MultiConsumer) Nack(msg *Message) error {
	cons, err := m.consumerOf(msg)
	if err != nil {
		return err
	}
	return cons.Nack(msg)
}

// Close closes every topic's consumer and stops discovery. Messages
// received and not acknowledged are redelivered, as with Consumer.Close.
func (m *MultiConsumer) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		close(m.closed)
		conss := make([]*Consumer, 0, len(m.mu.byTopic))
		for _, cons := range m.mu.byTopic {
			conss = append(conss, cons)
		}
		m.mu.byTopic, m.mu.order = map[string]*Consumer{}, nil
		m.mu.Unlock()
		if m.stop != nil {
			m.stop()
			<-m.done
		}
		for _, cons := range conss {
			_ = cons.Close()
		}
	})
	return nil
}
