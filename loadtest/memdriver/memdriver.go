// Package memdriver is an in-memory loadtest.Driver: a test double for the
// loadtest run loop, with injectable faults (acknowledged-but-dropped,
// duplicated and reordered messages) so tests can check that the verifier
// catches each. It is not a broker model; it is never used outside tests.
package memdriver

import (
	"context"
	"sync"
	"time"

	"github.com/strata-mq/strata/loadtest"
)

// Faults injects misbehaviour, each every N-th send on a partition (0 = never),
// and slowness.
type Faults struct {
	// DropEvery acknowledges the message but never stores it.
	DropEvery int
	// DuplicateEvery stores the message twice.
	DuplicateEvery int
	// SwapEvery holds the message back and stores it after the next one.
	SwapEvery int
	// ReceiveDelay is how long each Receive takes before it hands out a
	// message: a broker whose consumers are slower than its producers
	// (0 = at once).
	ReceiveDelay time.Duration
}

// Driver is the in-memory driver.
type Driver struct {
	faults Faults
	mu     struct {
		sync.Mutex
		parts map[partKey]*partition
	}
}

type partKey struct {
	topic string
	part  int
}

// New returns an in-memory driver with the given faults.
func New(f Faults) *Driver {
	d := &Driver{faults: f}
	d.mu.parts = make(map[partKey]*partition)
	return d
}

// Name implements loadtest.Driver.
func (d *Driver) Name() string { return "memory" }

// Durability implements loadtest.Driver.
func (d *Driver) Durability() string { return "none (in memory)" }

// Setup implements loadtest.Driver.
func (d *Driver) Setup(_ context.Context, w loadtest.Workload, topics []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range topics {
		for p := range w.Partitions {
			d.mu.parts[partKey{t, p}] = &partition{notify: make(chan struct{}), cursors: map[string]int{}}
		}
	}
	return nil
}

func (d *Driver) partition(topic string, part int) *partition {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.parts[partKey{topic, part}]
}

// NewProducer implements loadtest.Driver.
func (d *Driver) NewProducer(_ context.Context, topic string, part int) (loadtest.Producer, error) {
	return &producer{p: d.partition(topic, part), faults: d.faults}, nil
}

// NewConsumer implements loadtest.Driver. Every consumer of a subscription
// shares its cursor.
func (d *Driver) NewConsumer(_ context.Context, topic string, part int, sub string, _ loadtest.SubscriptionType) (loadtest.Consumer, error) {
	p := d.partition(topic, part)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.cursors[sub]; !ok {
		p.cursors[sub] = len(p.msgs)
	}
	return &consumer{p: p, sub: sub, delay: d.faults.ReceiveDelay}, nil
}

// Close implements loadtest.Driver.
func (d *Driver) Close() error { return nil }

type partition struct {
	mu      sync.Mutex
	msgs    [][]byte
	held    []byte
	sends   int
	cursors map[string]int
	notify  chan struct{} // closed and replaced on every append
}

func (p *partition) appendLocked(m []byte) {
	p.msgs = append(p.msgs, m)
	close(p.notify)
	p.notify = make(chan struct{})
}

type producer struct {
	p      *partition
	faults Faults
}

func every(n, i int) bool { return n > 0 && i%n == 0 }

func (pr *producer) SendAsync(ctx context.Context, _ string, payload []byte, done func(error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := pr.p
	p.mu.Lock()
	p.sends++
	i := p.sends
	switch {
	case every(pr.faults.DropEvery, i):
	case every(pr.faults.SwapEvery, i) && p.held == nil:
		p.held = payload
	default:
		p.appendLocked(payload)
		if every(pr.faults.DuplicateEvery, i) {
			p.appendLocked(payload)
		}
		if p.held != nil {
			p.appendLocked(p.held)
			p.held = nil
		}
	}
	p.mu.Unlock()
	done(nil)
	return nil
}

func (pr *producer) Flush(context.Context) error { return nil }
func (pr *producer) Close() error                { return nil }

type consumer struct {
	p     *partition
	sub   string
	delay time.Duration
}

func (c *consumer) Receive(ctx context.Context) (loadtest.Message, error) {
	if c.delay > 0 {
		t := time.NewTimer(c.delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return loadtest.Message{}, ctx.Err()
		case <-t.C:
		}
	}
	for {
		c.p.mu.Lock()
		if cur := c.p.cursors[c.sub]; cur < len(c.p.msgs) {
			c.p.cursors[c.sub] = cur + 1
			m := c.p.msgs[cur]
			c.p.mu.Unlock()
			return loadtest.Message{Payload: m}, nil
		}
		wait := c.p.notify
		c.p.mu.Unlock()
		select {
		case <-ctx.Done():
			return loadtest.Message{}, ctx.Err()
		case <-wait:
		}
	}
}

func (c *consumer) Close() error { return nil }
