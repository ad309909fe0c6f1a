package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestKeySharedSubscriptionOnARealBrokerKeepsEachKeyOnOneConsumer runs two
// KeyShared SDK consumers on a real standalone, with a producer whose
// batches mix keys: each key is received by one consumer only and in
// order, and once one consumer closes, the other receives every key, still
// in order, losing nothing.
func TestKeySharedSubscriptionOnARealBrokerKeepsEachKeyOnOneConsumer(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	consumers, got := ackingConsumers(ctx, t, c, "ks", 2, func(i int) []client.ConsumerOption {
		return []client.ConsumerOption{client.ConsumerType(client.KeyShared), client.ConsumerName(fmt.Sprint("worker-", i)),
			client.ConsumerInitialPosition(client.Earliest)}
	})
	p, err := c.NewProducer(ctx, "ks", client.ProducerLinger(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	const keys = 20
	// last[key] is the last message number received of key; owner[key] the
	// consumer that received the key in the current phase.
	last := map[string]int{}
	owner := map[string]int{}
	exchange := func(from, to int) {
		for i := from; i < to; i++ { // async sends, so that batches mix keys
			p.SendAsync(ctx, &client.ProducerMessage{Key: fmt.Sprint("k", i%keys), Payload: []byte(strconv.Itoa(i))},
				func(_ client.MessageID, _ *client.ProducerMessage, err error) {
					if err != nil {
						t.Errorf("send %d: %v", i, err)
					}
				})
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		clear(owner)
		for range to - from {
			select {
			case d := <-got:
				key := d.m.Key
				n, _ := strconv.Atoi(string(d.m.Payload))
				if prev, ok := last[key]; ok && n != prev+keys {
					t.Fatalf("key %s: message %d after %d", key, n, prev)
				}
				last[key] = n
				if o, ok := owner[key]; ok && o != d.by {
					t.Fatalf("key %s received by consumers %d and %d", key, o, d.by)
				}
				owner[key] = d.by
			case <-ctx.Done():
				t.Fatalf("received %d of %d", len(last), to)
			}
		}
	}
	exchange(0, 400)
	spread := map[int]int{}
	for _, by := range owner {
		spread[by]++
	}
	if len(spread) != 2 {
		t.Fatalf("keys per consumer %v, want both consumers used", spread)
	}
	consumers[0].Close()
	exchange(400, 600)
	for key, by := range owner {
		if by != 1 {
			t.Fatalf("key %s received by consumer %d after consumer 0 closed", key, by)
		}
	}
	if len(last) != keys || last["k19"] != 599 {
		t.Fatalf("last messages %v", last)
	}
	st, err := c.Admin().TopicStats(ctx, "ks")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Subscriptions) != 1 || !strings.EqualFold(st.Subscriptions[0].Type, "key_shared") {
		t.Fatalf("subscriptions %+v, want one key_shared", st.Subscriptions)
	}
}
