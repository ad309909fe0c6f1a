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

// TestSeekEarliestAndLatestOnARealBroker: SeekEarliest redelivers every
// message of every partition; SeekLatest skips the backlog, so the next
// message is the first one published after it. A reader does the same.
func TestSeekEarliestAndLatestOnARealBroker(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client()
	if err := c.Admin().CreateTopic(ctx, "edges", 2); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer(ctx, "edges")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	send := func(payload string) {
		t.Helper()
		if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte(payload)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		send(fmt.Sprintf("m%d", i))
	}
	cons, err := c.Subscribe(ctx, "edges", "s")
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	r, err := c.NewReader(ctx, "edges", client.ReaderStartLatest())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := cons.SeekEarliest(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.SeekEarliest(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 4 {
		m := receiveWithin(t, ctx, cons)
		got[string(m.Payload)] = true
		cons.Ack(m)
		if _, err := r.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 4 {
		t.Fatalf("after SeekEarliest got %v, want m0..m3", got)
	}
	if err := cons.SeekEarliest(ctx); err != nil { // the backlog again...
		t.Fatal(err)
	}
	if err := cons.SeekLatest(ctx); err != nil { // ...skipped
		t.Fatal(err)
	}
	if err := r.SeekLatest(ctx); err != nil {
		t.Fatal(err)
	}
	send("after")
	if m := receiveWithin(t, ctx, cons); string(m.Payload) != "after" {
		t.Fatalf("after SeekLatest the consumer got %q, want the message sent after it", m.Payload)
	}
	if m, err := r.Next(ctx); err != nil || string(m.Payload) != "after" {
		t.Fatalf("after SeekLatest the reader got %v, %v", m, err)
	}
}
