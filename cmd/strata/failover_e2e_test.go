package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestFailoverSubscriptionOnARealBrokerGivesEachPartitionOneConsumer runs
// two unnamed Failover consumers of a two-partition topic on a real
// standalone: each partition is delivered to exactly one of them, and once
// one closes, the other receives its partition too, losing nothing.
func TestFailoverSubscriptionOnARealBrokerGivesEachPartitionOneConsumer(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	if err := c.Admin().CreateTopic(ctx, "fo", 2); err != nil {
		t.Fatal(err)
	}
	type delivery struct {
		by int
		m  *client.Message
	}
	got := make(chan delivery, 100)
	consumers := make([]*client.Consumer, 2)
	for i := range consumers {
		cons, err := c.Subscribe(ctx, "fo", "s", client.ConsumerType(client.Failover), client.ConsumerInitialPosition(client.Earliest))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		consumers[i] = cons
		go func() {
			for {
				m, err := cons.Receive(ctx)
				if err != nil {
					return // closed, or the test is over
				}
				cons.Ack(m)
				got <- delivery{i, m}
			}
		}()
	}
	p, err := c.NewProducer(ctx, "fo")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	servedBy := map[int32]map[int]bool{}
	exchange := func(from, to int) {
		for i := from; i < to; i++ { // keys spread the messages over both partitions
			if _, err := p.Send(ctx, &client.ProducerMessage{Key: fmt.Sprintf("k%d", i), Payload: []byte(fmt.Sprintf("m%d", i))}); err != nil {
				t.Fatal(err)
			}
		}
		for range to - from {
			select {
			case d := <-got:
				seen[string(d.m.Payload)] = true
				if servedBy[d.m.ID.Partition] == nil {
					servedBy[d.m.ID.Partition] = map[int]bool{}
				}
				servedBy[d.m.ID.Partition][d.by] = true
			case <-ctx.Done():
				t.Fatalf("received %d of %d", len(seen), to)
			}
		}
	}
	exchange(0, 40)
	if len(servedBy) != 2 || len(servedBy[0]) != 1 || len(servedBy[1]) != 1 || servedBy[0][0] == servedBy[1][0] {
		t.Fatalf("partitions served by %v, want each by one consumer, a different one", servedBy)
	}
	consumers[0].Close()
	clear(servedBy)
	exchange(40, 60)
	if !servedBy[0][1] || !servedBy[1][1] || servedBy[0][0] || servedBy[1][0] {
		t.Fatalf("after the first consumer closed, partitions served by %v, want both by the second", servedBy)
	}
	for i := range 60 {
		if !seen[fmt.Sprintf("m%d", i)] {
			t.Fatalf("m%d never received", i)
		}
	}
}
