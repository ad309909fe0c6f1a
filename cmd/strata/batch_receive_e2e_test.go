package main

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// countingInterceptor counts what a consumer hands out and acknowledges.
type countingInterceptor struct{ consumed, acked atomic.Int64 }

func (i *countingInterceptor) BeforeConsume(*client.Message)                 { i.consumed.Add(1) }
func (i *countingInterceptor) OnAcknowledge(_ client.MessageID, err error)   { i.acked.Add(1) }
func (i *countingInterceptor) OnNegativeAcknowledge(client.MessageID, error) {}

// TestBatchReceiveDrainsABacklogInOrderedBatchesOnARealStandalone: on a
// real standalone, BatchReceive hands out a backlog in batches of at most
// the policy's count, in order, and a cumulative ack of each batch's last
// message leaves no backlog; a consumer interceptor sees every message and
// every ack.
func TestBatchReceiveDrainsABacklogInOrderedBatchesOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	const total = 35
	cli("", "subscriptions", "create", "--topic", "bulk", "--subscription", "loader")
	cli("", "produce", "--topic", "bulk", "--count", fmt.Sprint(total), "--size", "20")
	ctx := testContext(t, time.Minute)
	c := s.client()
	var seen countingInterceptor
	cons, err := c.Subscribe(ctx, "bulk", "loader", client.ConsumerInterceptors(&seen))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	batches := 0
	for got := 0; got < total; batches++ {
		msgs, err := cons.BatchReceive(ctx, client.BatchReceivePolicy{MaxMessages: 10, Timeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) > 10 {
			t.Fatalf("a batch of %d messages, over the policy's 10", len(msgs))
		}
		for _, m := range msgs {
			if want := string(generatedPayload(got, 20)); string(m.Payload) != want {
				t.Fatalf("message %d is %q, want %q", got, m.Payload, want)
			}
			got++
		}
		if err := cons.AckCumulative(msgs[len(msgs)-1]); err != nil {
			t.Fatal(err)
		}
	}
	if seen.consumed.Load() != total || seen.acked.Load() != int64(batches) {
		t.Fatalf("the interceptor saw %d messages and %d acks, want %d and %d", seen.consumed.Load(), seen.acked.Load(), total, batches)
	}
	waitFor(t, 30*time.Second, "no backlog", func() bool {
		st, err := c.Admin().TopicStats(ctx, "bulk")
		return err == nil && len(st.Subscriptions) == 1 && st.Subscriptions[0].Backlog == 0
	})
}
