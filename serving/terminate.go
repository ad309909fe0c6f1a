package serving

import (
	"context"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Termination, as Pulsar's terminate: a topic that has had its last
// message. Its managed ledger records its last entry
// (metadata.ManagedLedger.Terminated); from then on every batch and every
// new producer fails with TOPIC_TERMINATED, and each consumer that has been
// sent every entry is told so with an EndOfTopic (the SDK's Receive then
// answers ErrTopicTerminated, as io.EOF). Termination survives takeovers
// and restarts, and cannot be undone.

// terminatedErr is the refusal of a batch or producer of a terminated topic.
func (t *topic) terminatedErr() error {
	return errcode.New(errcode.TopicTerminated, "topic %s was terminated: it takes no more messages", t.name)
}

// terminate stops t taking messages, waits for the batches already
// accepted to be written, records the last entry and answers it.
func (t *topic) terminate(ctx context.Context) (ids.Position, error) {
	t.mu.Lock()
	if err := t.servingErrLocked(); err != nil {
		t.mu.Unlock()
		return ids.Position{}, err
	}
	if p := t.mu.ml.Terminated; p != nil {
		t.mu.Unlock()
		return *p, nil
	}
	t.mu.terminating++ // publish refuses new batches from now on
	t.mu.Unlock()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		t.mu.Lock()
		if err := t.servingErrLocked(); err != nil {
			t.mu.Unlock()
			return ids.Position{}, err
		}
		if t.mu.inflight == 0 && !t.mu.rolling && len(t.mu.queued) == 0 {
			t.mu.Unlock()
			break
		}
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			// Nothing was recorded: the topic is not terminated, and
			// takes batches again once no other terminate waits.
			t.mu.Lock()
			t.mu.terminating--
			t.mu.Unlock()
			return ids.Position{}, errcode.New(errcode.Timeout, "topic %s: waiting for the batches in flight before terminating", t.name)
		case <-tick.C:
		}
	}
	t.mlMu.Lock()
	defer t.mlMu.Unlock()
	t.mu.Lock()
	last := t.mu.lastPos
	next := cloneML(t.mu.ml)
	next.Terminated = &last
	t.mu.Unlock()
	if err := t.n.meta.PutManagedLedger(ctx, next); err != nil {
		err = metaConflict("recording the termination", err)
		t.dropOnError("recording the termination", err)
		return ids.Position{}, err
	}
	t.mu.Lock()
	t.mu.ml = next
	for _, s := range t.mu.subs {
		s.signal() // those at the end tell their consumers
	}
	t.mu.Unlock()
	t.log.Info("topic terminated", "last", last)
	return last, nil
}

// terminatedLocked reports whether t takes no more messages.
func (t *topic) terminatedLocked() bool { return t.mu.terminating > 0 || t.mu.ml.Terminated != nil }

// endOfTopicLocked tells each consumer of s that has not been told yet,
// once the topic is terminated and s has sent everything it holds.
func (s *subscription) endOfTopicLocked() {
	t := s.t
	if t.mu.ml.Terminated == nil || len(s.redeliver) > 0 || len(s.delayed) > 0 {
		return
	}
	if _, more := t.orderLocked().next(s.readPos); more {
		return
	}
	for _, c := range s.consumers {
		if c.endSent || len(c.out) >= cap(c.out)-1 {
			continue // told already, or no room now: the sender signals when it drains
		}
		c.endSent = true
		c.send(&servingpb.ConsumeResponse{Kind: &servingpb.ConsumeResponse_EndOfTopic{EndOfTopic: &servingpb.EndOfTopic{}}})
	}
}

// TerminateTopic terminates one topic (a partition, or a topic that is not
// partitioned) on its owner and answers its last message.
func (n *Node) TerminateTopic(ctx context.Context, req *servingpb.TerminateTopicRequest) (*servingpb.TerminateTopicResponse, error) {
	t, err := n.topicFor(ctx, req.GetTopic(), false)
	if err != nil {
		return nil, err
	}
	last, err := t.terminate(ctx)
	if err != nil {
		return nil, err
	}
	return &servingpb.TerminateTopicResponse{Last: &servingpb.MessageId{Ledger: uint64(last.Ledger), Entry: int64(last.Entry)}}, nil
}
