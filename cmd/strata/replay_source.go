package main

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/topic"
)

// partitionEnd is where one partition ended when the replay started: its
// last entry, from the owner's topic statistics. Messages after it were
// published during the replay and are left out, so a replay without --to
// ends even while producers keep writing.
type partitionEnd struct {
	known     bool // false: no statistics, the end is found by silence
	empty     bool // the partition held no entry
	rank      map[uint64]int
	maxLedger uint64
	endRank   int // index of the last ledger holding entries
	endLedger uint64
	endEntry  int64
}

// endFromStats finds the last entry among a partition's ledgers (listed
// oldest first).
func endFromStats(st *client.TopicStats) partitionEnd {
	if len(st.Ledgers) == 0 {
		return partitionEnd{} // no ledger listed: nothing to go by
	}
	e := partitionEnd{known: true, empty: true, rank: make(map[uint64]int, len(st.Ledgers))}
	for i, l := range st.Ledgers {
		e.rank[l.Ledger] = i
		e.maxLedger = max(e.maxLedger, l.Ledger)
		if l.Entries > 0 {
			e.empty, e.endRank, e.endLedger, e.endEntry = false, i, l.Ledger, l.Entries-1
		}
	}
	return e
}

// cmpEnd compares id's entry with the last entry: -1 before, 0 in it, 1 after.
func (e partitionEnd) cmpEnd(id client.MessageID) int {
	r, ok := e.rank[id.Ledger]
	if !ok {
		// A ledger that is not listed: opened after the statistics (after
		// the end), or trimmed before them (before the end).
		if id.Ledger > e.maxLedger {
			return 1
		}
		return -1
	}
	switch {
	case r < e.endRank:
		return -1
	case r > e.endRank:
		return 1
	case id.Entry < e.endEntry:
		return -1
	case id.Entry > e.endEntry:
		return 1
	}
	return 0
}

// replayWindow is the publish-time range [from, to); to is zero when open.
type replayWindow struct{ from, to time.Time }

// verdict is what the replay does with one message of a partition.
type verdict int

const (
	skipMessage   verdict = iota // before the range
	emitMessage                  // in the range
	stopPartition                // at or after the end: the partition is done
)

// classify places m, a message of a partition that ends at end, relative to
// the window. Publish times increase along a partition, so the first
// message at or after to ends it.
func (w replayWindow) classify(m *client.Message, end partitionEnd) verdict {
	switch {
	case end.known && (end.empty || end.cmpEnd(m.ID) > 0):
		return stopPartition
	case !w.to.IsZero() && !m.PublishTime.Before(w.to):
		return stopPartition
	case m.PublishTime.Before(w.from):
		return skipMessage
	}
	return emitMessage
}

// partReader reads the window out of one partition.
type partReader struct {
	index  int
	name   string
	r      *client.Reader // nil once done
	win    replayWindow
	end    partitionEnd
	seeked bool // the server placed the reader at --from
	idle   time.Duration
	// atEnd is set once the last entry was reached: what is left of its
	// batch is buffered already, so silence from then on is the end.
	atEnd bool

	out chan *client.Message // fed by feed, closed at the end
	err error                // why feed stopped early; read after out closed
}

// feed sends the partition's messages to out until the partition is done,
// fails (err) or ctx ends, then closes out and the reader.
func (p *partReader) feed(ctx context.Context) {
	defer close(p.out)
	defer p.finish()
	for {
		m, err := p.next(ctx)
		if err != nil {
			p.err = err
			return
		}
		if m == nil {
			return
		}
		select {
		case p.out <- m:
		case <-ctx.Done():
			p.err = ctx.Err()
			return
		}
	}
}

// take returns the next message fed, or nil once the partition is done.
func (p *partReader) take(ctx context.Context) (*client.Message, error) {
	select {
	case m, ok := <-p.out:
		if !ok {
			return nil, p.err
		}
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// next returns the partition's next message in the window, or nil once the
// partition is done.
func (p *partReader) next(ctx context.Context) (*client.Message, error) {
	for p.r != nil {
		wait := p.idle
		if p.atEnd {
			wait = replayTail
		}
		rctx, cancel := context.WithTimeout(ctx, wait)
		m, err := p.r.Next(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("reading %s: %w", p.name, err)
			}
			if err := p.silent(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		switch p.win.classify(m, p.end) {
		case skipMessage:
			continue
		case stopPartition:
			p.finish()
			continue
		}
		if p.end.known && p.end.cmpEnd(m.ID) == 0 {
			p.atEnd = true
		}
		return m, nil
	}
	return nil, nil
}

// silent handles a partition that sent nothing for wait: the end, unless
// the server says more follows what the reader handed over, which fails
// the replay rather than leave out the rest of its range. (Silence after a
// seek by time, or without statistics, was taken for the end: a replay
// stalled on unreadable data exited 0 with part of its range.)
func (p *partReader) silent(ctx context.Context, wait time.Duration) error {
	if p.atEnd {
		p.finish()
		return nil
	}
	hctx, cancel := context.WithTimeout(ctx, wait)
	more, err := p.r.HasNext(hctx)
	cancel()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err == nil && !more:
		p.finish()
		return nil
	case err != nil && !p.end.known:
		// A server that cannot say, and no statistics either: silence is
		// the only end there is.
		p.finish()
		return nil
	}
	if err != nil {
		return errcode.New(errcode.Timeout, "%s sent nothing for %v before its last entry %d:%d, and could not say whether more follows: %v",
			p.name, wait, p.end.endLedger, p.end.endEntry, err)
	}
	return errcode.New(errcode.Timeout, "%s sent nothing for %v though more follows: its data may be unreadable (see the node's log) or slow to come (raise --idle-timeout)",
		p.name, wait)
}

func (p *partReader) finish() {
	if p.r != nil {
		_ = p.r.Close()
		p.r = nil
	}
}

// replaySource merges the partitions' windows by publish time (ties by
// partition index), which keeps the order within each partition: publish
// times increase along a partition. Each partition is read by its own
// goroutine into a small channel, so that the partitions' waits (for the
// server, for the silence that ends them) overlap.
type replaySource struct {
	parts  []*partReader
	heads  headHeap
	primed bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// feedBuffer is how many messages a partition's goroutine reads ahead.
const feedBuffer = 64

// start runs one goroutine per partition; close stops them.
func (s *replaySource) start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	for _, p := range s.parts {
		p.out = make(chan *client.Message, feedBuffer)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			p.feed(ctx)
		}()
	}
}

// openReplaySource opens one reader per partition of p.topic, at p.from. A
// server that cannot seek by time (Unimplemented) gets readers from the
// earliest message, and the messages before p.from are skipped here.
func openReplaySource(ctx context.Context, c *client.Client, p replayPlan, log *slog.Logger) (*replaySource, error) {
	names, err := replayPartitions(ctx, c, p.topic)
	if err != nil {
		return nil, err
	}
	s := &replaySource{}
	seek := true
	queue := min(1000, max(50, 4000/len(names)))
	for i, name := range names {
		pr := &partReader{index: i, name: name, win: replayWindow{from: p.from, to: p.to}, idle: p.idleTimeout}
		s.parts = append(s.parts, pr)
		st, err := statsOf(ctx, c, name)
		switch {
		case err == nil:
			pr.end = endFromStats(st)
		case errors.Is(err, client.ErrTopicNotFound) || errors.Is(err, client.ErrInvalidTopicName):
			s.close()
			return nil, err
		case ctx.Err() != nil:
			s.close()
			return nil, ctx.Err()
		default:
			log.Warn("no statistics: the end of the partition is found by silence", "topic", name, "err", err)
		}
		if pr.end.known && pr.end.empty {
			continue // nothing to read
		}
		if pr.r, pr.seeked, err = openPartReader(ctx, c, name, p.from, queue, &seek, log); err != nil {
			s.close()
			return nil, err
		}
	}
	s.start(ctx)
	return s, nil
}

// statsRetryFor bounds how long statsOf retries: about a lease, the time a
// topic whose owner died takes to be served again.
const statsRetryFor = 30 * time.Second

// statsOf answers the statistics of partition name, retrying retriable
// errors (a topic whose owner just died answers SERVICE_NOT_READY until
// its lease ends) for up to statsRetryFor: without them the replay finds
// the partition's end by silence alone.
func statsOf(ctx context.Context, c *client.Client, name string) (*client.TopicStats, error) {
	deadline := time.Now().Add(statsRetryFor)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		st, err := c.Admin().TopicStats(ctx, name)
		if err == nil || !errcode.IsRetriable(err) || time.Now().Add(wait).After(deadline) {
			return st, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// replayPartitions returns the partitions of an existing topic (the topic
// itself when it is not partitioned). It does not create the topic.
func replayPartitions(ctx context.Context, c *client.Client, name string) ([]string, error) {
	info, err := c.Admin().GetTopic(ctx, name)
	if err != nil {
		return nil, err
	}
	if info.Partitions == 0 {
		return []string{name}, nil
	}
	n, err := topic.Parse(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, info.Partitions)
	for i := range out {
		out[i] = n.Partition(i).String()
	}
	return out, nil
}

// openPartReader opens a reader at from when the server can seek by time
// (*seek), else at the earliest message, clearing *seek for the partitions
// that follow.
func openPartReader(ctx context.Context, c *client.Client, name string, from time.Time, queue int, seek *bool,
	log *slog.Logger) (*client.Reader, bool, error) {
	if *seek {
		r, err := c.NewReader(ctx, name, client.ReaderStartTime(from), client.ReaderReceiverQueueSize(queue))
		if err == nil {
			return r, true, nil
		}
		if !errors.Is(err, client.ErrUnimplemented) {
			return nil, false, err
		}
		*seek = false
		log.Debug("the server cannot seek by time: reading from the earliest message", "topic", name, "err", err)
	}
	r, err := c.NewReader(ctx, name, client.ReaderStartEarliest(), client.ReaderReceiverQueueSize(queue))
	return r, false, err
}

// next returns the next message in publish-time order, or nil at the end.
func (s *replaySource) next(ctx context.Context) (*client.Message, error) {
	if !s.primed {
		s.primed = true
		for _, p := range s.parts {
			m, err := p.take(ctx)
			if err != nil {
				return nil, err
			}
			if m != nil {
				heap.Push(&s.heads, head{m: m, part: p})
			}
		}
	}
	if s.heads.Len() == 0 {
		return nil, nil
	}
	h := heap.Pop(&s.heads).(head)
	m, err := h.part.take(ctx)
	if err != nil {
		return nil, err
	}
	if m != nil {
		heap.Push(&s.heads, head{m: m, part: h.part})
	}
	return h.m, nil
}

// close stops the partitions' goroutines and closes every reader.
func (s *replaySource) close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	for _, p := range s.parts {
		p.finish()
	}
}

// head is the next message of one partition.
type head struct {
	m    *client.Message
	part *partReader
}

// headHeap orders heads by publish time, then partition index.
type headHeap []head

func (h headHeap) Len() int { return len(h) }
func (h headHeap) Less(i, j int) bool {
	ti, tj := h[i].m.PublishTime, h[j].m.PublishTime
	if !ti.Equal(tj) {
		return ti.Before(tj)
	}
	return h[i].part.index < h[j].part.index
}
func (h headHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *headHeap) Push(x any)   { *h = append(*h, x.(head)) }
func (h *headHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = head{}
	*h = old[:len(old)-1]
	return x
}
