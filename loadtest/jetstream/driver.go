package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strata-mq/strata/loadtest"
)

// Durability statements for the comparison table.
const (
	DurabilityDefault = "ack after write to page cache; fsync every 2 min (server default sync_interval), 1 replica"
	DurabilitySync    = "fsync before ack (sync_interval: always), 1 replica"
)

// Config configures the driver.
type Config struct {
	// URL of an existing server ("nats://127.0.0.1:4222"). Empty starts
	// nats-server from ServerBin (default FindServerBinary()).
	URL       string
	ServerBin string
	// SyncAlways runs the started server with `sync_interval: always`
	// (the "jetstream-sync" driver). It has no effect with URL, and then
	// Durability reports the server's setting as unknown.
	SyncAlways bool
	// AckTimeout bounds the wait for one publish acknowledgement
	// (default 30s).
	AckTimeout time.Duration
	Logger     *slog.Logger
}

// Driver implements loadtest.Driver for JetStream.
type Driver struct {
	cfg Config
	log *slog.Logger

	srv    *server
	url    string
	admin  *nats.Conn
	js     jetstream.JetStream
	window int

	mu struct {
		sync.Mutex
		conns []*nats.Conn
	}
}

// New returns a driver; nothing starts before Setup.
func New(cfg Config) *Driver {
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{cfg: cfg, log: log}
}

// Name implements loadtest.Driver.
func (d *Driver) Name() string {
	if d.cfg.SyncAlways {
		return "jetstream-sync"
	}
	return "jetstream"
}

// Durability implements loadtest.Driver.
func (d *Driver) Durability() string {
	switch {
	case d.cfg.URL != "":
		return "as configured on " + d.cfg.URL + " (1 replica)"
	case d.cfg.SyncAlways:
		return DurabilitySync
	}
	return DurabilityDefault
}

// Setup starts the server if needed and creates one stream per topic.
func (d *Driver) Setup(ctx context.Context, w loadtest.Workload, topics []string) error {
	d.window = w.MaxPending
	if err := d.startServer(ctx); err != nil {
		return err
	}
	nc, err := d.connect()
	if err != nil {
		return err
	}
	d.admin = nc
	if d.js, err = jetstream.New(nc); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	for _, t := range topics {
		cfg := jetstream.StreamConfig{
			Name:     streamName(t),
			Subjects: []string{subjectPrefix(t) + ".*"},
			Storage:  jetstream.FileStorage,
			Replicas: 1,
		}
		if _, err := d.js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("jetstream: create stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

func (d *Driver) startServer(ctx context.Context) error {
	if d.cfg.URL != "" {
		d.url = d.cfg.URL
		return nil
	}
	bin := d.cfg.ServerBin
	if bin == "" {
		var err error
		if bin, err = FindServerBinary(); err != nil {
			return err
		}
	}
	srv, err := startServer(ctx, bin, d.cfg.SyncAlways, d.log)
	if err != nil {
		return err
	}
	d.srv, d.url = srv, srv.url
	return nil
}

// connect opens a connection that Close will close.
func (d *Driver) connect() (*nats.Conn, error) {
	nc, err := nats.Connect(d.url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("jetstream: connect %s: %w", d.url, err)
	}
	d.mu.Lock()
	d.mu.conns = append(d.mu.conns, nc)
	d.mu.Unlock()
	return nc, nil
}

// streamName maps a topic to a stream name (letters, digits, - and _).
func streamName(topic string) string { return "LT_" + sanitize(topic) }

func subjectPrefix(topic string) string { return "lt." + sanitize(topic) }

func partitionSubject(topic string, part int) string {
	return fmt.Sprintf("%s.%d", subjectPrefix(topic), part)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// NewProducer implements loadtest.Driver: one connection per producer.
func (d *Driver) NewProducer(_ context.Context, topic string, part int) (loadtest.Producer, error) {
	nc, err := d.connect()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(d.window),
		jetstream.WithPublishAsyncTimeout(d.cfg.AckTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return newProducer(js, partitionSubject(topic, part), d.window), nil
}

// NewConsumer implements loadtest.Driver: a durable pull consumer per
// subscription and partition, shared by every consumer opened on it.
func (d *Driver) NewConsumer(ctx context.Context, topic string, part int, sub string, _ loadtest.SubscriptionType) (loadtest.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       sanitize(sub) + fmt.Sprintf("_p%d", part),
		FilterSubject: partitionSubject(topic, part),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 4 * d.window,
		AckWait:       30 * time.Second,
	}
	if _, err := d.js.CreateOrUpdateConsumer(ctx, streamName(topic), cfg); err != nil {
		return nil, fmt.Errorf("jetstream: consumer %s: %w", cfg.Durable, err)
	}
	// A connection of its own, so that deliveries do not queue behind
	// the admin connection.
	nc, err := d.connect()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	bound, err := js.Consumer(ctx, streamName(topic), cfg.Durable)
	if err != nil {
		return nil, fmt.Errorf("jetstream: bind consumer %s: %w", cfg.Durable, err)
	}
	it, err := bound.Messages(jetstream.PullMaxMessages(500))
	if err != nil {
		return nil, fmt.Errorf("jetstream: messages of %s: %w", cfg.Durable, err)
	}
	return &consumer{it: it}, nil
}

// Close closes every connection and stops the server the driver started.
func (d *Driver) Close() error {
	d.mu.Lock()
	conns := d.mu.conns
	d.mu.conns = nil
	d.mu.Unlock()
	for _, nc := range conns {
		nc.Close()
	}
	if d.srv != nil {
		return d.srv.close()
	}
	return nil
}

type consumer struct {
	it jetstream.MessagesContext
}

func (c *consumer) Receive(ctx context.Context) (loadtest.Message, error) {
	m, err := c.it.Next(jetstream.NextContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return loadtest.Message{}, ctx.Err()
		}
		return loadtest.Message{}, err
	}
	return loadtest.Message{
		Payload: m.Data(),
		Ack:     func(context.Context) error { return m.Ack() },
	}, nil
}

func (c *consumer) Close() error {
	c.it.Stop()
	return nil
}

// ErrClosed fails the sends still pending when a producer is closed.
var ErrClosed = errors.New("jetstream: producer closed")
