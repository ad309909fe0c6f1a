package main

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestLargestMessageIsConsumedThroughTheSDK sends a message of the default
// 5 MiB limit through the SDK to a real standalone and receives it on a
// consumer and a reader, byte for byte: past gRPC's 4 MiB default for
// received messages, which the SDK must raise, or such a message would stay
// in the backlog for ever while the consumer reconnects in a loop. One byte
// more is refused with ErrMessageTooLarge, before it is written.
func TestLargestMessageIsConsumedThroughTheSDK(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	cons, err := c.Subscribe(ctx, "large", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	p, err := c.NewProducer(ctx, "large")
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 5<<20)
	for i := range payload {
		payload[i] = byte(rand.Uint32())
	}
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: payload}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: append(payload, 0)}); !errors.Is(err, client.ErrMessageTooLarge) {
		t.Fatalf("a message one byte over the limit: got %v, want ErrMessageTooLarge", err)
	}
	m, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Payload, payload) {
		t.Fatalf("received %d bytes, not the %d sent", len(m.Payload), len(payload))
	}
	r, err := c.NewReader(ctx, "large", client.ReaderStartEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if m, err := r.Next(ctx); err != nil || !bytes.Equal(m.Payload, payload) {
		t.Fatalf("reader: %v", err)
	}
}
