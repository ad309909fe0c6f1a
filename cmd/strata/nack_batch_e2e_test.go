package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestNacksInBatchesDeadLetterOnlyTheMessagesThatFailed is the tester's
// reproduction, scaled down and made deterministic: 1000 messages in
// producer batches of 50, one consumer that nacks some messages every time
// (poison), some once (flaky), and acknowledges the rest at once, with
// MaxDeliveries 3. A nack gives back its message's entry, siblings
// included; before per-message counts each of those redeliveries counted
// for every sibling, and healthy messages, some already acknowledged, went
// to the dead-letter topic. Now exactly the poison messages go there, no
// message is handed out again after the application acknowledged it, and
// a message's redelivery count counts its own nacks only.
func TestNacksInBatchesDeadLetterOnlyTheMessagesThatFailed(t *testing.T) {
	s := newStandalone(t)
	s.start()
	c := s.client()
	for _, typ := range []client.SubscriptionType{client.Shared, client.KeyShared} {
		t.Run(fmt.Sprint(typ), func(t *testing.T) {
			nackBatchRun(t, c, "nack-batch-"+fmt.Sprint(typ), typ)
		})
	}
}

const (
	nackBatchMessages = 1000
	nackBatchMax      = 3
)

func poisonMsg(i int) bool { return i%100 == 7 }
func flakyMsg(i int) bool  { return i%20 == 3 }

func nackBatchRun(t *testing.T, c *client.Client, topic string, typ client.SubscriptionType) {
	ctx := testContext(t, 3*time.Minute)
	cons, err := c.Subscribe(ctx, topic, "s", client.ConsumerType(typ), client.ConsumerInitialPosition(client.Earliest),
		client.ConsumerNackRedeliveryDelay(100*time.Millisecond),
		client.ConsumerDeadLetterPolicy(client.DeadLetterPolicy{MaxDeliveries: nackBatchMax}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	dlq, err := c.Subscribe(ctx, topic+"-s-DLQ", "ops", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	p, err := c.NewProducer(ctx, topic, client.ProducerBatchMaxMessages(50), client.ProducerLinger(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range nackBatchMessages {
		p.SendAsync(ctx, &client.ProducerMessage{Key: fmt.Sprint("k", i%10), Payload: []byte(strconv.Itoa(i))},
			func(_ client.MessageID, _ *client.ProducerMessage, err error) {
				if err != nil {
					t.Errorf("send %d: %v", i, err)
				}
			})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	var poison, wantAcked int
	for i := range nackBatchMessages {
		if poisonMsg(i) {
			poison++
		} else {
			wantAcked++
		}
	}
	acked := map[int]bool{}
	nacked := map[int]int{}
	dead := map[int]int{}
	for len(acked) < wantAcked || len(dead) < poison {
		if ctx.Err() != nil {
			t.Fatalf("%d of %d acknowledged, %d of %d dead-lettered: %v", len(acked), wantAcked, len(dead), poison, ctx.Err())
		}
		if m := receiveOrNil(ctx, t, cons, 200*time.Millisecond); m != nil {
			i, _ := strconv.Atoi(string(m.Payload))
			switch {
			case acked[i]:
				t.Fatalf("message %d handed out again (redelivery count %d) after it was acknowledged", i, m.RedeliveryCount)
			case int(m.RedeliveryCount) > nacked[i]:
				t.Fatalf("message %d handed out with redelivery count %d after %d nacks of it", i, m.RedeliveryCount, nacked[i])
			case poisonMsg(i) || (flakyMsg(i) && nacked[i] == 0):
				nacked[i]++
				if err := cons.Nack(m); err != nil {
					t.Fatal(err)
				}
			default:
				acked[i] = true
				if err := cons.Ack(m); err != nil {
					t.Fatal(err)
				}
			}
		}
		if d := receiveOrNil(ctx, t, dlq, time.Millisecond); d != nil {
			i, _ := strconv.Atoi(string(d.Payload))
			if dead[i]++; !poisonMsg(i) || dead[i] > 1 {
				t.Fatalf("message %d dead-lettered (%d times); nacked %d times, acknowledged: %v", i, dead[i], nacked[i], acked[i])
			}
			if err := dlq.Ack(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range nackBatchMessages {
		if poisonMsg(i) && nacked[i] != nackBatchMax {
			t.Errorf("poison message %d nacked %d times before it was dead-lettered, want %d", i, nacked[i], nackBatchMax)
		}
	}
	waitFor(t, 30*time.Second, "the subscription's backlog to drain", func() bool {
		st, err := c.Admin().TopicStats(ctx, topic)
		return err == nil && len(st.Subscriptions) == 1 && st.Subscriptions[0].Backlog == 0
	})
}

// receiveOrNil receives a message, or nil when none comes within d.
func receiveOrNil(ctx context.Context, t *testing.T, cons *client.Consumer, d time.Duration) *client.Message {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	m, err := cons.Receive(rctx)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	return m
}
