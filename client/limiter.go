package client

import (
	"context"
	"sync"
)

// limiter bounds the messages and bytes a producer partition holds (queued or
// sent but not acknowledged). acquire blocks until there is room, the context
// ends, or the limiter is closed.
type limiter struct {
	maxMessages int
	maxBytes    int

	mu struct {
		sync.Mutex
		messages int
		bytes    int
		closed   bool
		changed  chan struct{} // closed and replaced whenever room frees up
	}
}

func newLimiter(maxMessages, maxBytes int) *limiter {
	l := &limiter{maxMessages: maxMessages, maxBytes: maxBytes}
	l.mu.changed = make(chan struct{})
	return l
}

// acquire takes room for one message of n bytes. A message larger than
// maxBytes is admitted when nothing else is held, so it cannot wait forever.
// With failFast it returns ErrProducerQueueFull instead of waiting.
func (l *limiter) acquire(ctx context.Context, n int, failFast bool) error {
	for {
		l.mu.Lock()
		if l.mu.closed {
			l.mu.Unlock()
			return ErrClosed
		}
		if l.fitsLocked(n) {
			l.mu.messages++
			l.mu.bytes += n
			l.mu.Unlock()
			return nil
		}
		ch := l.mu.changed
		l.mu.Unlock()
		if failFast {
			return ErrProducerQueueFull
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (l *limiter) fitsLocked(n int) bool {
	if l.mu.messages >= l.maxMessages {
		return false
	}
	return l.mu.bytes+n <= l.maxBytes || l.mu.messages == 0
}

// release returns the room of messages totalling n bytes.
func (l *limiter) release(messages, n int) {
	l.mu.Lock()
	l.mu.messages -= messages
	l.mu.bytes -= n
	close(l.mu.changed)
	l.mu.changed = make(chan struct{})
	l.mu.Unlock()
}

// close wakes every waiter with ErrClosed.
func (l *limiter) close() {
	l.mu.Lock()
	if !l.mu.closed {
		l.mu.closed = true
		close(l.mu.changed)
		l.mu.changed = make(chan struct{})
	}
	l.mu.Unlock()
}
