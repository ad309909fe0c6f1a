package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestConsumerSeekTimeOnARealBrokerLandsOnTheFirstMessageAtOrAfterT checks
// the SDK's SeekTime against a real standalone (its other tests use a fake
// broker): after the seek, the next message is the first whose publish time
// is at or after t.
func TestConsumerSeekTimeOnARealBrokerLandsOnTheFirstMessageAtOrAfterT(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client()
	p, err := c.NewProducer(ctx, "seek-time")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 { // Send waits for its receipt: one entry per message
		if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte(fmt.Sprintf("m%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := c.Subscribe(ctx, "seek-time", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var msgs []*client.Message
	for range 10 {
		m := receiveWithin(t, ctx, cons)
		msgs = append(msgs, m)
		cons.Ack(m)
	}
	target := msgs[5]
	if !msgs[4].PublishTime.Before(target.PublishTime) {
		t.Fatalf("publish times do not increase: %v then %v", msgs[4].PublishTime, target.PublishTime)
	}
	if err := cons.SeekTime(ctx, target.PublishTime); err != nil {
		t.Fatal(err)
	}
	if got := receiveWithin(t, ctx, cons); string(got.Payload) != "m5" || got.ID != target.ID {
		t.Fatalf("after SeekTime(%v) got %s %v, want m5 %v", target.PublishTime, got.Payload, got.ID, target.ID)
	}
}

func receiveWithin(t *testing.T, ctx context.Context, cons *client.Consumer) *client.Message {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	m, err := cons.Receive(rctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
