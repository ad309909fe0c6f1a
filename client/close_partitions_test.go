package client_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// closePartitions is the partitions of the topics the Close tests below
// use: each partition that cannot finish may hold Close for its grace of
// 2 s, so one after the other they would take 16 s.
const closePartitions = 8

// closeBound is how long Close may take when every partition waits out
// its grace: one grace with room for a loaded machine, half the time
// the partitions would take one after the other.
const closeBound = 8 * time.Second

// TestClosingAPartitionedProducerWaitsOneGraceNotOneAPartition: a
// producer whose partitions all have batches a node that hangs does not
// answer, nor end their streams, closes its partitions together, as Pulsar's closeAsync does, so Close
// takes one grace, not one a partition (before, 16 s for 8 partitions).
func TestClosingAPartitionedProducerWaitsOneGraceNotOneAPartition(t *testing.T) {
	_, b, c := setup(t, closePartitions)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0), client.ProducerBatchMaxMessages(1), client.ProducerReceiptTimeout(0))
	if err != nil {
		t.Fatal(err)
	}
	b.HoldBatches() // the node takes them and neither answers nor ends the streams
	t.Cleanup(b.ReleaseBatches)
	for i := range 4 * closePartitions {
		p.SendAsync(ctx, payload(i), nil)
	}
	waitFor(t, "a batch in flight on every partition", func() bool {
		topics := map[string]bool{}
		for _, bt := range b.Batches() {
			topics[bt.Topic] = true
		}
		return len(topics) == closePartitions
	})
	start := time.Now()
	_ = p.Close()
	if d := time.Since(start); d > closeBound {
		t.Fatalf("Close took %v with %d partitions waiting, want one grace (at most %v)", d, closePartitions, closeBound)
	}
}

// TestClosingAPartitionedConsumerWaitsOneGraceNotOneAPartition: the same
// for a consumer whose partitions are all reconnecting with acks kept to
// send: each waits for its stream to come back, all at once.
func TestClosingAPartitionedConsumerWaitsOneGraceNotOneAPartition(t *testing.T) {
	cl, b, c := setup(t, closePartitions)
	ctx := testCtx(t)
	cons := subscribeEarliest(t, ctx, c)
	for i := range closePartitions {
		publish(cl, fmt.Sprintf("%s-partition-%d", testTopic, i), 4*i, 4*i+4)
	}
	msgs := receiveN(t, ctx, cons, 4*closePartitions, false)
	breakHolding(t, b, testBreak)
	t.Cleanup(b.ReleaseSubscribes)
	for _, m := range msgs {
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	_ = cons.Close()
	if d := time.Since(start); d > closeBound {
		t.Fatalf("Close took %v with %d partitions reconnecting, want one grace (at most %v)", d, closePartitions, closeBound)
	}
}
