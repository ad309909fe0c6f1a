package serving

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Compaction keeps the latest message of each key of a topic, as Pulsar's
// topic compaction and Kafka's compacted topics: the owner reads the topic
// up to its last entry (the horizon), folding in the previous compaction,
// and writes what is left to a new ledger of its own (metadata.Compaction),
// one message per entry, each with the id it was published with in the
// compactedIDProperty. A message with an empty payload removes its key (a
// tombstone, dropped from the result); keyless messages are left out.
// Readers that ask for it (ReadCompacted) get the compacted messages first
// and then the topic after the horizon, so the latest value of every key
// outlives the retention of the ledgers it came from.

// compactedIDProperty carries a compacted message's original id,
// "ledger:entry:batch"; the node strips it from what it hands out.
const compactedIDProperty = "__strata_compacted_id"

type compactedMsg struct {
	id          ids.MessageID
	msg         entry.Message
	producer    string
	publishTime int64
}

// compactionState is the latest message of each key, in the order they
// were published.
type compactionState struct {
	byKey map[string]int // index into msgs
	msgs  []*compactedMsg
}

func (s *compactionState) apply(m *compactedMsg) {
	if m.msg.Key == "" {
		return
	}
	if i, ok := s.byKey[m.msg.Key]; ok {
		s.msgs[i] = nil
		delete(s.byKey, m.msg.Key)
	}
	if len(m.msg.Payload) == 0 {
		return // a tombstone
	}
	s.byKey[m.msg.Key] = len(s.msgs)
	s.msgs = append(s.msgs, m)
}

// maybeCompact starts a compaction on a goroutine of the topic when the
// bytes of its ledgers after the last compaction (all of them, before the
// first) reach the policy's threshold and none is running.
func (t *topic) maybeCompact() {
	threshold := t.pol().CompactionThresholdBytes
	if threshold <= 0 || !t.compacting.CompareAndSwap(false, true) {
		return
	}
	t.mu.Lock()
	since := t.bytesSinceCompactionLocked()
	t.mu.Unlock()
	if since < uint64(threshold) {
		t.compacting.Store(false)
		return
	}
	t.goOwned(func() {
		defer t.compacting.Store(false)
		if _, err := t.compact(t.ctx); err != nil && t.ctx.Err() == nil {
			t.log.Warn("compaction on the threshold failed; the next trim tries again", "err", err)
		}
	})
}

// bytesSinceCompactionLocked sums the bytes written after the last
// compaction's horizon: those of its ledger past it and of every later
// ledger (every ledger when there was none, or when the horizon's ledger
// was trimmed: those left are all after it).
func (t *topic) bytesSinceCompactionLocked() uint64 {
	var n uint64
	h := horizonIndex(t.mu.ml.Ledgers, t.mu.ml.Compaction)
	if h >= 0 {
		// The horizon's ledger is often the current one, which may never
		// roll on a quiet topic.
		if b := t.bytesLocked(h); b > t.mu.ml.Compaction.HorizonBytes {
			n = b - t.mu.ml.Compaction.HorizonBytes
		}
	}
	for i := h + 1; i < len(t.mu.ml.Ledgers); i++ {
		n += t.bytesLocked(i)
	}
	return n
}

// horizonIndex answers the index in ls of c's horizon ledger: -1 when there
// is no compaction or its horizon ledger was trimmed, which trims every
// ledger before it too, so that every ledger in ls is after the horizon.
func horizonIndex(ls []metadata.LedgerInfo, c *metadata.Compaction) int {
	if c == nil {
		return -1
	}
	return slices.IndexFunc(ls, func(li metadata.LedgerInfo) bool { return li.ID == c.Horizon.Ledger })
}

// compact compacts t up to its last entry and answers the new compaction
// (the previous one when there is nothing new).
func (t *topic) compact(ctx context.Context) (*metadata.Compaction, error) {
	mu, _ := t.n.compactions.LoadOrStore(t.name, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()

	t.mu.Lock()
	if err := t.servingErrLocked(); err != nil {
		t.mu.Unlock()
		return nil, err
	}
	ml := cloneML(t.mu.ml)
	horizon := t.mu.lastPos
	var horizonBytes uint64
	if i := slices.IndexFunc(t.mu.ml.Ledgers, func(li metadata.LedgerInfo) bool { return li.ID == horizon.Ledger }); i >= 0 {
		horizonBytes = t.bytesLocked(i) // lastPos and the bytes move together under t.mu
	}
	t.mu.Unlock()
	prev := ml.Compaction
	if horizon.Entry < 0 || (prev != nil && prev.Horizon == horizon) {
		return prev, nil // nothing (new) to compact
	}
	state := &compactionState{byKey: map[string]int{}}
	if prev != nil {
		if err := t.readCompacted(ctx, prev, func(m *compactedMsg) error { state.apply(m); return nil }); err != nil {
			return nil, fmt.Errorf("reading the previous compaction: %w", err)
		}
	}
	if err := t.foldLedgers(ctx, ml.Ledgers, prev, horizon, state); err != nil {
		return nil, err
	}
	next, err := t.writeCompaction(ctx, state, horizon)
	if err != nil {
		return nil, err
	}
	next.HorizonBytes = horizonBytes
	if err := t.recordCompaction(ctx, next); err != nil {
		t.deleteLedger(context.WithoutCancel(ctx), next.Ledger)
		return nil, err
	}
	if prev != nil {
		t.deleteLedger(context.WithoutCancel(ctx), prev.Ledger)
	}
	t.log.Info("compacted", "horizon", next.Horizon, "messages", next.Messages)
	return next, nil
}

// foldLedgers applies to state every message of ledgers after prev's
// horizon (every one without prev) up to horizon.
func (t *topic) foldLedgers(ctx context.Context, ledgers []metadata.LedgerInfo, prev *metadata.Compaction, horizon ids.Position, state *compactionState) error {
	start := 0
	var after ids.EntryID = -1 // in ledgers[start]: the entries after it
	if i := horizonIndex(ledgers, prev); i >= 0 {
		start, after = i, prev.Horizon.Entry
	}
	for i := start; i < len(ledgers); i++ {
		li := ledgers[i]
		first, last := ids.EntryID(0), ids.EntryID(li.Entries-1)
		if i == start {
			first = after + 1
		}
		if li.ID == horizon.Ledger {
			last = horizon.Entry
		}
		for first <= last {
			es, err := t.readEntries(ctx, li.ID, first, last)
			if err != nil {
				return fmt.Errorf("reading ledger %d for compaction: %w", li.ID, err)
			}
			if len(es) == 0 {
				return errcode.New(errcode.Unavailable, "ledger %d answered no entry at %d", li.ID, first)
			}
			for _, e := range es {
				for b, m := range e.batch.Messages {
					state.apply(&compactedMsg{id: ids.MessageID{Ledger: li.ID, Entry: e.pos.Entry, Batch: int32(b)}, msg: m,
						producer: e.batch.ProducerName, publishTime: e.batch.PublishTime})
				}
			}
			first = es[len(es)-1].pos.Entry + 1
		}
		if li.ID == horizon.Ledger {
			break
		}
	}
	return nil
}

// writeCompaction writes state's messages, in order, to a new ledger.
func (t *topic) writeCompaction(ctx context.Context, state *compactionState, horizon ids.Position) (*metadata.Compaction, error) {
	w, err := t.n.ledgers.Create(ctx, t.createOptions())
	if err != nil {
		return nil, unavailable("creating the compacted ledger", err)
	}
	var (
		mu       sync.Mutex
		firstErr error
		n        int64
	)
	for _, m := range state.msgs {
		if m == nil {
			continue
		}
		msg := m.msg
		msg.Properties = make(map[string]string, len(m.msg.Properties)+1)
		for k, v := range m.msg.Properties {
			msg.Properties[k] = v
		}
		msg.Properties[compactedIDProperty] = m.id.String()
		n++
		w.Append(entry.Encode(&entry.Batch{ProducerName: m.producer, PublishTime: m.publishTime, Messages: []entry.Message{msg}}),
			func(_ ids.EntryID, err error) {
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			})
	}
	err = w.Close(ctx, func(l *metadata.Ledger) { l.Topic = t.name })
	mu.Lock()
	if firstErr != nil {
		err = firstErr
	}
	mu.Unlock()
	if err != nil {
		t.deleteLedger(context.WithoutCancel(ctx), w.ID())
		return nil, unavailable("writing the compacted ledger", err)
	}
	return &metadata.Compaction{Ledger: w.ID(), Horizon: horizon, Messages: n, CompletedAt: time.Now().UnixNano()}, nil
}

// recordCompaction stores c in the managed ledger.
func (t *topic) recordCompaction(ctx context.Context, c *metadata.Compaction) error {
	t.mlMu.Lock()
	defer t.mlMu.Unlock()
	t.mu.Lock()
	if err := t.servingErrLocked(); err != nil {
		t.mu.Unlock()
		return err
	}
	next := cloneML(t.mu.ml)
	next.Compaction = c
	t.mu.Unlock()
	if err := t.n.meta.PutManagedLedger(ctx, next); err != nil {
		err = metaConflict("recording compaction", err)
		t.dropOnError("recording compaction", err)
		return err
	}
	t.mu.Lock()
	t.mu.ml = next
	t.mu.Unlock()
	return nil
}

// readCompacted calls f with each message of compaction c, in order.
func (t *topic) readCompacted(ctx context.Context, c *metadata.Compaction, f func(*compactedMsg) error) error {
	for first := ids.EntryID(0); int64(first) < c.Messages; {
		es, err := t.readEntries(ctx, c.Ledger, first, ids.EntryID(c.Messages-1))
		if err != nil {
			return err
		}
		if len(es) == 0 {
			return errcode.New(errcode.Unavailable, "compacted ledger %d answered no entry at %d", c.Ledger, first)
		}
		for _, e := range es {
			if len(e.batch.Messages) != 1 {
				return errcode.New(errcode.Corruption, "compacted ledger %d entry %d holds %d messages", c.Ledger, e.pos.Entry, len(e.batch.Messages))
			}
			m := e.batch.Messages[0]
			id, err := parseCompactedID(m.Properties[compactedIDProperty])
			if err != nil {
				return errcode.New(errcode.Corruption, "compacted ledger %d entry %d: %v", c.Ledger, e.pos.Entry, err)
			}
			if err := f(&compactedMsg{id: id, msg: m, producer: e.batch.ProducerName, publishTime: e.batch.PublishTime}); err != nil {
				return err
			}
		}
		first = es[len(es)-1].pos.Entry + 1
	}
	return nil
}

func parseCompactedID(s string) (ids.MessageID, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return ids.MessageID{}, fmt.Errorf("bad compacted id %q", s)
	}
	l, err1 := strconv.ParseUint(parts[0], 10, 64)
	e, err2 := strconv.ParseInt(parts[1], 10, 64)
	b, err3 := strconv.ParseInt(parts[2], 10, 32)
	if err1 != nil || err2 != nil || err3 != nil {
		return ids.MessageID{}, fmt.Errorf("bad compacted id %q", s)
	}
	return ids.MessageID{Ledger: ids.LedgerID(l), Entry: ids.EntryID(e), Batch: int32(b)}, nil
}

// CompactTopic compacts one topic (a partition, or a topic that is not
// partitioned) on its owner.
func (n *Node) CompactTopic(ctx context.Context, req *servingpb.CompactTopicRequest) (*servingpb.CompactTopicResponse, error) {
	t, err := n.topicFor(ctx, req.GetTopic(), false)
	if err != nil {
		return nil, err
	}
	c, err := t.compact(ctx)
	if err != nil {
		return nil, err
	}
	out := &servingpb.CompactTopicResponse{}
	if c != nil {
		out.Horizon = &servingpb.MessageId{Ledger: uint64(c.Horizon.Ledger), Entry: int64(c.Horizon.Entry)}
		out.Messages = uint64(c.Messages)
	}
	return out, nil
}

// compactedBatch is how many messages one ReadCompactedResponse carries.
const compactedBatch = 256

// ReadCompacted streams one topic's compacted messages, in order, then
// where a reader goes on from.
func (n *Node) ReadCompacted(req *servingpb.ReadCompactedRequest, stream servingpb.Broker_ReadCompactedServer) error {
	ctx := stream.Context()
	t, err := n.topicFor(ctx, req.GetTopic(), true) // as a reader's subscribe does
	if err != nil {
		return err
	}
	t.mu.Lock()
	c := t.mu.ml.Compaction
	horizonKept := horizonIndex(t.mu.ml.Ledgers, c) >= 0
	t.mu.Unlock()
	end := &servingpb.CompactedEnd{}
	if c != nil {
		var batch []*servingpb.ReceivedMessage
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			err := stream.Send(&servingpb.ReadCompactedResponse{Kind: &servingpb.ReadCompactedResponse_Messages{Messages: &servingpb.Messages{Messages: batch}}})
			batch = nil
			return err
		}
		err := t.readCompacted(ctx, c, func(m *compactedMsg) error {
			props := make(map[string]string, len(m.msg.Properties))
			for k, v := range m.msg.Properties {
				if k != compactedIDProperty {
					props[k] = v
				}
			}
			batch = append(batch, &servingpb.ReceivedMessage{
				Id:  &servingpb.MessageId{Ledger: uint64(m.id.Ledger), Entry: int64(m.id.Entry), Batch: m.id.Batch},
				Key: m.msg.Key, Properties: props, Payload: m.msg.Payload, PublishTimeUnixNano: m.publishTime,
				EventTimeUnixNano: m.msg.EventTime, ProducerName: m.producer, SequenceId: m.msg.SequenceID})
			if len(batch) == compactedBatch {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return err
		}
		end.Compacted = true
		// The ledgers up to a trimmed horizon ledger are gone: the rest of
		// the topic is all after it.
		if horizonKept {
			end.ContinueFrom = &servingpb.MessageId{Ledger: uint64(c.Horizon.Ledger), Entry: int64(c.Horizon.Entry) + 1}
		}
	}
	return stream.Send(&servingpb.ReadCompactedResponse{Kind: &servingpb.ReadCompactedResponse_End{End: end}})
}
