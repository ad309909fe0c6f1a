package serving_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving/servingpb"
)

// TestTerminatedTopicRefusesMessagesAndTellsConsumersAtTheEnd: once
// terminated, a topic answers its last message, refuses batches and new
// producers with TOPIC_TERMINATED, sends a consumer every message and then
// EndOfTopic, and stays terminated when loaded again.
func TestTerminatedTopicRefusesMessagesAndTellsConsumersAtTheEnd(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "public/default/sealed"
	p := mustProducer(t, n, topic, "p")
	p.mustSend(msg(1))
	last := p.mustSend(msg(2))
	r, err := n.client.TerminateTopic(ctxT(t), &servingpb.TerminateTopicRequest{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetLast().GetLedger() != last.GetLedger() || r.GetLast().GetEntry() != last.GetEntry() {
		t.Fatalf("terminated at %v, want the last receipt %v", r.GetLast(), last)
	}
	if r, err := p.send(msg(3)); err != nil || errcode.Code(r.GetError().GetCode()) != errcode.TopicTerminated {
		t.Fatalf("a batch after the termination: %v %v, want TOPIC_TERMINATED", r, err)
	}
	if _, err := openProducer(t, n, topic, "q"); errcode.CodeOf(err) != errcode.TopicTerminated {
		t.Fatalf("a producer after the termination: %v, want TOPIC_TERMINATED", err)
	}
	again, err := n.client.TerminateTopic(ctxT(t), &servingpb.TerminateTopicRequest{Topic: topic})
	if err != nil || again.GetLast().GetEntry() != r.GetLast().GetEntry() {
		t.Fatalf("terminated twice: %v %v", again, err)
	}

	sub := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	sub.flow(10)
	var got int
	for {
		resp, err := sub.stream.Recv()
		if err != nil {
			t.Fatalf("after %d messages: %v", got, err)
		}
		if resp.GetEndOfTopic() != nil {
			break
		}
		got += len(resp.GetMessages().GetMessages())
	}
	if got != 2 {
		t.Fatalf("EndOfTopic after %d messages, want 2", got)
	}
	sub.cancel()

	if _, err := n.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := openProducer(t, n, topic, "r"); errcode.CodeOf(err) != errcode.TopicTerminated {
		t.Fatalf("a producer after the topic was loaded again: %v, want TOPIC_TERMINATED", err)
	}
}

// TestATerminationThatTimesOutLeavesTheTopicTakingMessages: a terminate
// whose wait for the batches in flight outlasts its call fails with
// TIMEOUT and records nothing; the topic is not terminated, so it goes on
// taking batches and producers. It used to refuse them all with
// TOPIC_TERMINATED, which the SDK takes as final, until the topic moved.
func TestATerminationThatTimesOutLeavesTheTopicTakingMessages(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "public/default/terminate-timeout"
	p := mustProducer(t, n, topic, "p")
	p.mustSend(msg(1))
	var once sync.Once
	stalled := c.memL.Stall()
	resume := func() { once.Do(stalled) }
	t.Cleanup(resume)
	if err := p.stream.Send(sendReq(2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the batch in flight", func() error {
		if got := n.InFlight(topic); got != 1 {
			return fmt.Errorf("%d appends in flight", got)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(ctxT(t), 50*time.Millisecond)
	defer cancel()
	if _, err := n.client.TerminateTopic(ctx, &servingpb.TerminateTopicRequest{Topic: topic}); err == nil {
		t.Fatal("a terminate that could not wait for the batch in flight succeeded")
	}
	// The node's terminate gives up once the cancellation of the call
	// reaches it; until then it refuses new producers.
	eventually(t, "a producer after the failed terminate", func() error {
		q, err := openProducer(t, n, topic, "q")
		if err == nil {
			q.close()
		}
		return err
	})
	resume()
	if r, err := p.stream.Recv(); err != nil || r.GetReceipt().GetLastSequenceId() != 2 {
		t.Fatalf("batch 2: %v %v; want its receipt", r, err)
	}
	if r, err := p.send(msg(3)); err != nil || r.GetReceipt() == nil {
		t.Fatalf("a batch after the failed terminate: %v %v; want a receipt", r, err)
	}
	ml, err := c.meta.GetManagedLedger(ctxT(t), topic)
	if err != nil || ml.Terminated != nil {
		t.Fatalf("managed ledger after the failed terminate: %+v %v; want it not terminated", ml, err)
	}
}
