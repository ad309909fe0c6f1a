package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestPeekShowsTheBacklogWithoutConsumingIt: `strata subscriptions peek`
// on a real standalone prints the messages after the subscription's
// mark-delete position, in order, at most --count, and leaves the backlog
// as it was; on a partitioned topic Admin.Peek reads every partition; an
// unknown subscription is an error.
func TestPeekShowsTheBacklogWithoutConsumingIt(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	cons, err := c.Subscribe(ctx, "peeked", "s", client.ConsumerInitialPosition(client.Earliest), client.ConsumerAckGroupingTime(0))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer(ctx, "peeked")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte(fmt.Sprint("m", i))}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Ack(m); err != nil {
		t.Fatal(err)
	}
	cons.Close()
	backlog := func() uint64 {
		st, err := c.Admin().TopicStats(ctx, "peeked")
		if err != nil || len(st.Subscriptions) != 1 {
			t.Fatalf("stats: %+v %v", st, err)
		}
		return st.Subscriptions[0].Backlog
	}
	waitFor(t, 20*time.Second, "the ack applied", func() bool { return backlog() == 4 })
	out, stderr, err := run(t, "", "subscriptions", "peek", "--url", s.url(), "--topic", "peeked", "--subscription", "s")
	if err != nil {
		t.Fatalf("peek: %v (%s)", err, stderr)
	}
	var payloads []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		payloads = append(payloads, f[len(f)-1])
	}
	if strings.Join(payloads, ",") != "m1,m2,m3,m4" {
		t.Fatalf("peeked %q, want m1..m4", payloads)
	}
	if out, _, _ := run(t, "", "subscriptions", "peek", "--url", s.url(), "--topic", "peeked", "--subscription", "s", "--count", "2"); strings.Count(out, "\n") != 2 {
		t.Fatalf("peek --count 2 printed %q", out)
	}
	if b := backlog(); b != 4 {
		t.Fatalf("backlog %d after peeking, want 4", b)
	}
	if _, _, err := run(t, "", "subscriptions", "peek", "--url", s.url(), "--topic", "peeked", "--subscription", "nobody"); err == nil {
		t.Fatal("peek of an unknown subscription succeeded")
	}

	if err := c.Admin().CreateTopic(ctx, "peeked-parts", 2); err != nil {
		t.Fatal(err)
	}
	pc, err := c.Subscribe(ctx, "peeked-parts", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
	pp, err := c.NewProducer(ctx, "peeked-parts")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := pp.Send(ctx, &client.ProducerMessage{Key: fmt.Sprint("k", i), Payload: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := c.Admin().Peek(ctx, "peeked-parts", "s", 100)
	if err != nil || len(msgs) != 20 {
		t.Fatalf("peeked %d messages, %v; want 20", len(msgs), err)
	}
	if msgs[0].ID.Partition != 0 || msgs[19].ID.Partition != 1 {
		t.Fatalf("partitions %d .. %d, want 0 first and 1 last", msgs[0].ID.Partition, msgs[19].ID.Partition)
	}
	if _, err := c.Admin().Peek(ctx, "peeked-parts", "nobody", 1); !errors.Is(err, client.ErrSubscriptionNotFound) {
		t.Fatalf("unknown subscription: %v", err)
	}
}
