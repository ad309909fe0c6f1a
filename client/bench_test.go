package client_test

import (
	"context"
	"testing"

	"github.com/strata-mq/strata/client"
)

// BenchmarkProducerSendAsync measures the SDK's produce path (batching,
// pipelining, receipts) against the in-memory fake broker over loopback gRPC.
func BenchmarkProducerSendAsync(b *testing.B) {
	_, _, c := setupB(b)
	ctx := context.Background()
	p, err := c.NewProducer(ctx, "t")
	if err != nil {
		b.Fatal(err)
	}
	msg := &client.ProducerMessage{Payload: make([]byte, 100)}
	b.SetBytes(100)
	b.ResetTimer()
	for range b.N {
		p.SendAsync(ctx, msg, nil)
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkConsumerReceiveAck measures receive + ack of messages already in
// the fake broker's log.
func BenchmarkConsumerReceiveAck(b *testing.B) {
	cl, _, c := setupB(b)
	payloads := make([]string, b.N)
	for i := range payloads {
		payloads[i] = "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
	}
	cl.Publish(testTopic, payloads...)
	ctx := context.Background()
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(100)
	b.ResetTimer()
	for range b.N {
		m, err := cons.Receive(ctx)
		if err != nil {
			b.Fatal(err)
		}
		_ = cons.Ack(m)
	}
}
