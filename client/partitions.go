package client

import (
	"context"
	"sync"
	"time"
)

// Partitions added to a partitioned topic after a producer or consumer
// opened (Admin.AddPartitions) are found by a watcher that asks for the
// topic's partition count every PartitionsRefresh and hands the new count
// to grow. A key's partition is its hash modulo the count, so keys move
// when partitions are added: per-key order holds only within each count.

// partitionWatcher runs grow(n) whenever the topic reports more partitions
// than have.
type partitionWatcher struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// watchPartitions starts a watcher of topic, which has have partitions;
// nil when the topic is not partitioned or the refresh is off.
func (c *Client) watchPartitions(topic string, have int, grow func(ctx context.Context, n int) error) *partitionWatcher {
	if have == 0 || c.cfg.partsRefresh <= 0 {
		return nil
	}
	w := &partitionWatcher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-w.stop
			cancel()
		}()
		t := time.NewTicker(c.cfg.partsRefresh)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
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
	w.once.Do(func() { close(w.stop) })
	<-w.done
}
