package client

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Partitions added to a partitioned topic after a producer or consumer
// opened (Admin.AddPartitions) are found by a watcher that asks for the
// topic's partition count every PartitionsRefresh and hands the new count
// to grow. A key's partition is its hash modulo the count, so keys move
// when partitions are added: per-key order holds only within each count.

// partSet is a producer's or consumer's partition handles, by partition
// index. The slice is replaced, never changed in place, when a partition is
// added, so that the hot paths read it without a lock; mu serializes adding
// with closing.
type partSet[T any] struct {
	cur    atomic.Pointer[[]T]
	mu     sync.Mutex
	closed bool
}

// now is the current handles, by partition index.
func (ps *partSet[T]) now() []T {
	if p := ps.cur.Load(); p != nil {
		return *p
	}
	return nil
}

// add opens the handle of the next partition index with open, given the
// handles so far, and appends it; ErrClosed once closeAdding ran.
func (ps *partSet[T]) add(open func(cur []T) (T, error)) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return ErrClosed
	}
	cur := ps.now()
	h, err := open(cur)
	if err != nil {
		return err
	}
	next := append(cur[:len(cur):len(cur)], h)
	ps.cur.Store(&next)
	return nil
}

// closeAdding makes later adds fail, after any add in progress.
func (ps *partSet[T]) closeAdding() {
	ps.mu.Lock()
	ps.closed = true
	ps.mu.Unlock()
}

// partitionWatcher runs grow(n) whenever the topic reports more partitions
// than have.
type partitionWatcher struct {
	stop context.CancelFunc
	done chan struct{}
}

// watchPartitions starts a watcher of topic, which has have partitions;
// nil when the topic is not partitioned or the refresh is off.
func (c *Client) watchPartitions(topic string, have int, grow func(ctx context.Context, n int) error) *partitionWatcher {
	if have == 0 || c.cfg.partsRefresh <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &partitionWatcher{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(c.cfg.partsRefresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n, err := c.partitions(ctx, topic)
			if err == nil && n > have {
				c.cfg.logger.Info("topic has new partitions", "topic", topic, "from", have, "to", n)
				err = grow(ctx, n)
				if err == nil {
					have = n
				}
			}
			if err != nil && ctx.Err() == nil {
				c.cfg.logger.Warn("looking for new partitions", "topic", topic, "err", err)
			}
		}
	}()
	return w
}

// close stops the watcher and waits for it (a grow in progress ends first).
func (w *partitionWatcher) close() {
	if w == nil {
		return
	}
	w.stop()
	<-w.done
}
