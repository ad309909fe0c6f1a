package client_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

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

// BenchmarkProducerLinger measures publish latency (SendAsync to callback)
// with a 1 ms linger against the fake broker, which answers at once, so the
// figure is the batching delay and the SDK's own path: bursts of 150
// messages with a 1 ms sleep between them (the loadtest's shape before its
// pacer moved to a timerfd; the sleeps run late, so the rate is below
// 150,000 msg/s), with the send loop waiting on the runtime's timers or on
// its client's linger clock (an hrtimer).
func BenchmarkProducerLinger(b *testing.B) {
	for _, kind := range []string{"runtime", "clock"} {
		b.Run(kind, func(b *testing.B) {
			if kind == "runtime" {
				client.UseRuntimeTimers(b)
			}
			_, _, c := setupB(b)
			ctx := context.Background()
			p, err := c.NewProducer(ctx, "t", client.ProducerLinger(time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			lat := hdrhistogram.New(1, int64(time.Minute), 3)
			msg := &client.ProducerMessage{Payload: make([]byte, 100)}
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				p.SendAsync(ctx, msg, func(client.MessageID, *client.ProducerMessage, error) {
					d := time.Since(start)
					mu.Lock()
					_ = lat.RecordValue(int64(d))
					mu.Unlock()
				})
				if i%150 == 149 {
					time.Sleep(time.Millisecond)
				}
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			b.ReportMetric(float64(lat.ValueAtQuantile(50))/1e3, "p50-µs")
			b.ReportMetric(float64(lat.ValueAtQuantile(99))/1e3, "p99-µs")
			b.ReportMetric(float64(lat.ValueAtQuantile(99.9))/1e3, "p99.9-µs")
		})
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
