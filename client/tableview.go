package client

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
)

// TableView is the latest message of each key of a topic, kept up to date
// as messages arrive, as Pulsar's TableView (and a Kafka Streams table):
// for settings, prices or states that many processes read. A message with
// an empty payload removes its key (a tombstone); messages without a key
// are skipped. It reads the topic's compaction (Admin.CompactTopic) and
// then the topic from after it, or from its earliest retained message when
// it was never compacted.
type TableView struct {
	r      *Reader
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.RWMutex
	data      map[string]*Message
	listeners []func(key string, msg *Message)
	err       error
	// cbMu serialises the listeners' calls, so that a listener sees the
	// snapshot before the updates after it, one call at a time.
	// LOCKORDER: cbMu before mu.
	cbMu sync.Mutex
}

// NewTableView opens a table view of topic and returns once it holds every
// message published before the call (ctx bounds that), then follows the
// topic until Close.
func (c *Client) NewTableView(ctx context.Context, topicName string) (*TableView, error) {
	r, err := c.NewReader(ctx, topicName, ReaderStartEarliest(), ReaderReadCompacted())
	if err != nil {
		return nil, err
	}
	tv := &TableView{r: r, data: map[string]*Message{}, done: make(chan struct{})}
	for {
		more, err := r.HasNext(ctx)
		if err == nil && more {
			var m *Message
			if m, err = r.Next(ctx); err == nil {
				tv.apply(m)
				continue
			}
		}
		if err != nil {
			_ = r.Close()
			return nil, err
		}
		break
	}
	follow, cancel := context.WithCancel(context.Background())
	tv.cancel = cancel
	go tv.follow(follow)
	return tv, nil
}

// follow applies the messages that arrive until ctx ends or the reader
// fails for good.
func (tv *TableView) follow(ctx context.Context) {
	defer close(tv.done)
	for {
		m, err := tv.r.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				tv.mu.Lock()
				tv.err = err
				tv.mu.Unlock()
			}
			return
		}
		tv.apply(m)
	}
}

func (tv *TableView) apply(m *Message) {
	if m.Key == "" {
		return
	}
	tv.mu.Lock()
	if len(m.Payload) == 0 {
		delete(tv.data, m.Key)
	} else {
		tv.data[m.Key] = m
	}
	ls := tv.listeners
	tv.mu.Unlock()
	if len(ls) == 0 {
		return
	}
	tv.cbMu.Lock()
	defer tv.cbMu.Unlock()
	for _, l := range ls {
		if len(m.Payload) == 0 {
			l(m.Key, nil)
		} else {
			l(m.Key, m)
		}
	}
}

// Get returns the latest message of key, or nil.
func (tv *TableView) Get(key string) *Message {
	tv.mu.RLock()
	defer tv.mu.RUnlock()
	return tv.data[key]
}

// Size returns the number of keys.
func (tv *TableView) Size() int {
	tv.mu.RLock()
	defer tv.mu.RUnlock()
	return len(tv.data)
}

// Keys returns the keys, sorted.
func (tv *TableView) Keys() []string {
	tv.mu.RLock()
	defer tv.mu.RUnlock()
	return slices.Sorted(maps.Keys(tv.data))
}

// ForEachAndListen calls f with every key and its latest message now, then
// with each update as it arrives (a nil message for a removed key), on the
// view's goroutine: f must not block.
func (tv *TableView) ForEachAndListen(f func(key string, msg *Message)) {
	tv.cbMu.Lock()
	defer tv.cbMu.Unlock()
	tv.mu.Lock()
	snapshot := maps.Clone(tv.data)
	tv.listeners = append(tv.listeners, f)
	tv.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(snapshot)) {
		f(k, snapshot[k])
	}
}

// Err returns why the view stopped following the topic (the topic was
// deleted, say), or nil while it follows.
func (tv *TableView) Err() error {
	tv.mu.RLock()
	defer tv.mu.RUnlock()
	return tv.err
}

// Close stops following the topic and closes the reader.
func (tv *TableView) Close() error {
	tv.cancel()
	err := tv.r.Close()
	<-tv.done
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}
