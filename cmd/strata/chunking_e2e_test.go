package main

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestChunkedMessageOverTheLimitIsConsumedWholeOnARealStandalone: with a
// 64 KiB message limit, a 1 MiB message sent with chunking is written as
// chunks and handed out whole, in order with the messages around it, to an
// exclusive consumer (after a nack too, and its ack clears every chunk)
// and to a reader; a shared consumer gets the chunks as they are; without
// chunking the send fails with ErrMessageTooLarge.
func TestChunkedMessageOverTheLimitIsConsumedWholeOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	const topic = "public/chunked/files"
	cli("", "namespaces", "set-policy", "public/chunked", "--max-message-size", "64KiB")
	cli("", "subscriptions", "create", "--topic", topic, "--subscription", "whole")
	cli("", "subscriptions", "create", "--topic", topic, "--subscription", "raw")
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(rand.Uint32())
	}
	plain, err := c.NewProducer(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Send(ctx, &client.ProducerMessage{Payload: big}); !errors.Is(err, client.ErrMessageTooLarge) {
		t.Fatalf("without chunking: %v, want ErrMessageTooLarge", err)
	}
	p, err := c.NewProducer(ctx, topic, client.ProducerChunking(0))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, m := range []*client.ProducerMessage{
		{Payload: []byte("before")},
		{Key: "file-7", Payload: big, Properties: map[string]string{"name": "scan.tiff"}},
		{Payload: []byte("after")},
	} {
		if _, err := p.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, got []*client.Message) {
		t.Helper()
		if len(got) != 3 || string(got[0].Payload) != "before" || string(got[2].Payload) != "after" ||
			!bytes.Equal(got[1].Payload, big) || got[1].Key != "file-7" || len(got[1].Properties) != 1 || got[1].Properties["name"] != "scan.tiff" {
			t.Fatalf("%s: %d messages, the second %d bytes, key %q, properties %v", what, len(got), len(got[1].Payload), got[1].Key, got[1].Properties)
		}
	}
	receive := func(n int, next func() (*client.Message, error)) []*client.Message {
		t.Helper()
		var out []*client.Message
		for range n {
			m, err := next()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}

	cons, err := c.Subscribe(ctx, topic, "whole", client.ConsumerNackRedeliveryDelay(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	next := func() (*client.Message, error) { return cons.Receive(ctx) }
	got := receive(3, next)
	check("exclusive consumer", got)
	if err := cons.Nack(got[1]); err != nil {
		t.Fatal(err)
	}
	again := receive(1, next)[0]
	if !bytes.Equal(again.Payload, big) || again.RedeliveryCount == 0 {
		t.Fatalf("after the nack: %d bytes, redelivery count %d", len(again.Payload), again.RedeliveryCount)
	}
	for _, m := range []*client.Message{got[0], again, got[2]} {
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "no backlog on the exclusive subscription", func() bool {
		st, err := c.Admin().TopicStats(ctx, topic)
		if err != nil {
			return false
		}
		for _, sub := range st.Subscriptions {
			if sub.Name == "whole" {
				return sub.Backlog == 0
			}
		}
		return false
	})

	r, err := c.NewReader(ctx, topic, client.ReaderStartEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	check("reader", receive(3, func() (*client.Message, error) { return r.Next(ctx) }))

	shared, err := c.Subscribe(ctx, topic, "raw", client.ConsumerType(client.Shared))
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	const chunks = 16 // 1 MiB in chunks of 64 KiB
	raw := receive(chunks+2, func() (*client.Message, error) { return shared.Receive(ctx) })
	var joined []byte
	for _, m := range raw[1 : chunks+1] {
		joined = append(joined, m.Payload...)
	}
	if !bytes.Equal(joined, big) {
		t.Fatalf("the shared consumer's %d chunks do not make the message", chunks)
	}

	// From the command line: a 100 KiB line, refused without --chunking.
	line := strings.Repeat("0123456789", 10<<10)
	if _, _, err := run(t, line+"\n", "produce", "--topic", "public/chunked/lines", "--url", s.url()); !errors.Is(err, client.ErrMessageTooLarge) {
		t.Fatalf("a 100 KiB line without --chunking: %v, want ErrMessageTooLarge", err)
	}
	cli(line+"\n", "produce", "--topic", "public/chunked/lines", "--chunking")
	out := payloads(cli("", "consume", "--topic", "public/chunked/lines", "--subscription", "s", "--position", "earliest",
		"--count", "1", "--timeout", "20s"))
	if len(out) != 1 || out[0] != line {
		t.Fatalf("consumed %d messages, the first %d bytes; want the line whole", len(out), len(out[0]))
	}
}
