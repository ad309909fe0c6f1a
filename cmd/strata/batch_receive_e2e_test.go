package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestBatchReceiveDrainsABacklogInOrderedBatchesOnARealStandalone: on a
// real standalone, BatchReceive hands out a backlog in batches of at most
// the policy's count, in order, and a cumulative ack of each batch's last
// message leaves no backlog.
func TestBatchReceiveDrainsABacklogInOrderedBatchesOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	const total = 35
	cli("", "subscriptions", "create", "--topic", "bulk", "--subscription", "loader")
	cli("", "produce", "--topic", "bulk", "--count", fmt.Sprint(total), "--size", "20")
	ctx := testContext(t, time.Minute)
	c := s.client()
	cons, err := c.Subscribe(ctx, "bulk", "loader")
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for got := 0; got < total; {
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
	waitFor(t, 30*time.Second, "no backlog", func() bool {
		st, err := c.Admin().TopicStats(ctx, "bulk")
		return err == nil && len(st.Subscriptions) == 1 && st.Subscriptions[0].Backlog == 0
	})
}
