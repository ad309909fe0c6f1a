// Package stratadriver is the loadtest driver for Strata itself, over the
// Go SDK (package client).
//
// Mapping: a workload topic with one partition is a non-partitioned topic;
// with more it is a partitioned topic whose partitions
// ("<topic>-partition-<i>") are opened one by one, so the load generator
// routes messages itself. Subscriptions keep their Pulsar types and start at
// the earliest message. Producers batch with the workload's batching delay
// and keep at most MaxPending messages in flight.
//
// Unless Config.URL is set, Setup starts `strata standalone` from
// Config.Exe (default: the running executable) on random loopback ports in
// a temporary directory, and Close stops it.
package stratadriver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/loadtest"
	"github.com/strata-mq/strata/loadtest/procs"
)

// DefaultDurability is what an acknowledgement means on Strata.
const DefaultDurability = "fsync'd bookie journal on Qa of Qw bookies before ack"

// Config configures the driver.
type Config struct {
	// URL of a running cluster, strata://host:port[,host:port]. Empty
	// starts a standalone from Exe (default os.Executable()).
	URL string
	Exe string
	// Durability overrides the stated durability (for example the
	// ensemble of a chaos cluster).
	Durability string
	Logger     *slog.Logger
	// ClientOptions are added to the SDK client's (TLS, for a
	// strata+tls:// URL).
	ClientOptions []client.Option
}

// Driver implements loadtest.Driver for Strata.
type Driver struct {
	cfg        Config
	log        *slog.Logger
	standalone *procs.Standalone
	c          *client.Client
	w          loadtest.Workload
}

// New returns a driver; nothing connects or starts before Setup.
func New(cfg Config) *Driver {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{cfg: cfg, log: log}
}

// Name implements loadtest.Driver.
func (d *Driver) Name() string { return "strata" }

// Durability implements loadtest.Driver.
func (d *Driver) Durability() string {
	if d.cfg.Durability != "" {
		return d.cfg.Durability
	}
	if d.cfg.URL == "" {
		return DefaultDurability + " (standalone: 1 bookie)"
	}
	return DefaultDurability
}

// Setup starts a standalone if needed and creates the topics.
func (d *Driver) Setup(ctx context.Context, w loadtest.Workload, topics []string) error {
	d.w = w
	url, err := d.endpoint(ctx)
	if err != nil {
		return err
	}
	if d.c, err = client.New(url, append([]client.Option{client.Logger(d.log)}, d.cfg.ClientOptions...)...); err != nil {
		return fmt.Errorf("stratadriver: %w", err)
	}
	partitions := w.Partitions
	if partitions == 1 {
		partitions = 0
	}
	for _, t := range topics {
		err := d.c.Admin().CreateTopic(ctx, t, partitions)
		switch {
		case err == nil, errors.Is(err, client.ErrTopicExists):
		case partitions > 0 && client.CodeOf(err) == errcode.InvalidArgument:
			// The broker refused the partitioned topic: open the partitions
			// by name and let it create them on first use (the load
			// generator routes messages itself either way).
			d.log.Warn("stratadriver: partitioned topic refused; relying on creation on first use", "topic", t, "err", err)
		default:
			return fmt.Errorf("stratadriver: create topic %s: %w", t, err)
		}
	}
	return nil
}

func (d *Driver) endpoint(ctx context.Context) (string, error) {
	if d.cfg.URL != "" {
		return d.cfg.URL, nil
	}
	exe := d.cfg.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return "", fmt.Errorf("stratadriver: own executable: %w", err)
		}
	}
	s, err := procs.StartStandalone(ctx, exe, d.log)
	if err != nil {
		return "", err
	}
	d.standalone = s
	return "strata://" + s.GRPCAddr, nil
}

// topicOf is the name a producer or consumer of partition part opens.
func (d *Driver) topicOf(topic string, part int) string {
	if d.w.Partitions == 1 {
		return topic
	}
	return loadtest.PartitionName(topic, part)
}

// NewProducer implements loadtest.Driver.
func (d *Driver) NewProducer(ctx context.Context, topic string, part int) (loadtest.Producer, error) {
	codec, err := client.ParseCompression(d.w.Compression)
	if err != nil {
		return nil, err
	}
	p, err := d.c.NewProducer(ctx, d.topicOf(topic, part),
		client.ProducerLinger(d.w.BatchingDelay),
		client.ProducerMaxPendingMessages(d.w.MaxPending),
		client.ProducerCompression(codec))
	if err != nil {
		return nil, err
	}
	return &producer{p: p}, nil
}

// NewConsumer implements loadtest.Driver.
func (d *Driver) NewConsumer(ctx context.Context, topic string, part int, sub string, typ loadtest.SubscriptionType) (loadtest.Consumer, error) {
	c, err := d.c.Subscribe(ctx, d.topicOf(topic, part), sub,
		client.ConsumerType(subType(typ)),
		client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		return nil, err
	}
	return &consumer{c: c}, nil
}

func subType(t loadtest.SubscriptionType) client.SubscriptionType {
	switch t {
	case loadtest.Shared:
		return client.Shared
	case loadtest.Failover:
		return client.Failover
	case loadtest.KeyShared:
		return client.KeyShared
	}
	return client.Exclusive
}

// Close closes the client and stops the standalone the driver started.
func (d *Driver) Close() error {
	var errs []error
	if d.c != nil {
		errs = append(errs, d.c.Close())
	}
	if d.standalone != nil {
		errs = append(errs, d.standalone.Close())
	}
	return errors.Join(errs...)
}

type producer struct{ p *client.Producer }

// SendAsync implements loadtest.Producer. The SDK reports every failure
// through the callback, including a wait for room that ctx cancelled (then
// the callback runs before SendAsync returns and the message was never
// queued). That one case is returned as SendAsync's error instead, as the
// loadtest.Producer contract asks, so that the run does not count a message
// that never left as an unacknowledged send.
func (p *producer) SendAsync(ctx context.Context, key string, payload []byte, done func(error)) error {
	var returned atomic.Bool
	var notQueued atomic.Pointer[error]
	p.p.SendAsync(ctx, &client.ProducerMessage{Key: key, Payload: payload},
		func(_ client.MessageID, _ *client.ProducerMessage, err error) {
			if !returned.Load() && err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				notQueued.Store(&err)
				return
			}
			done(err)
		})
	returned.Store(true)
	if err := notQueued.Load(); err != nil {
		return *err
	}
	return nil
}

func (p *producer) Flush(ctx context.Context) error { return p.p.Flush(ctx) }
func (p *producer) Close() error                    { return p.p.Close() }

type consumer struct{ c *client.Consumer }

func (c *consumer) Receive(ctx context.Context) (loadtest.Message, error) {
	m, err := c.c.Receive(ctx)
	if err != nil {
		return loadtest.Message{}, err
	}
	return loadtest.Message{
		Payload: m.Payload,
		Key:     m.Key,
		Ack:     func(context.Context) error { return c.c.Ack(m) },
	}, nil
}

func (c *consumer) Close() error { return c.c.Close() }
