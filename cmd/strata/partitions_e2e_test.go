package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestAddedPartitionsAreTakenOnByRunningProducersAndConsumers grows a
// partitioned topic with `strata topics update` on a real standalone while
// a producer and a consumer run: the producer spreads keys over the new
// partitions once it finds them, and the consumer, which finds them later
// (a longer refresh) and subscribed at the latest position, still receives
// every message, those produced to the new partitions before it came
// included; so does a reader opened at the latest position.
func TestAddedPartitionsAreTakenOnByRunningProducersAndConsumers(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	fast := s.client(client.PartitionsRefresh(100 * time.Millisecond))
	slow := s.client(client.PartitionsRefresh(2 * time.Second))
	if err := fast.Admin().CreateTopic(ctx, "grow", 2); err != nil {
		t.Fatal(err)
	}
	cons, err := slow.Subscribe(ctx, "grow", "s", client.ConsumerType(client.Shared))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	r, err := slow.NewReader(ctx, "grow", client.ReaderStartLatest())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := fast.NewProducer(ctx, "grow")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, _, err := run(t, "", "topics", "update", "grow", "--url", s.url(), "--partitions", "1"); err == nil {
		t.Fatal("topics update to fewer partitions succeeded")
	}
	if out, stderr, err := run(t, "", "topics", "update", "grow", "--url", s.url(), "--partitions", "4"); err != nil || !strings.Contains(out, "4 partitions") {
		t.Fatalf("topics update: %q %v (%s)", out, err, stderr)
	}
	waitFor(t, 20*time.Second, "the producer to find 4 partitions", func() bool { return p.Partitions() == 4 })
	const count = 200
	for i := range count {
		if _, err := p.Send(ctx, &client.ProducerMessage{Key: fmt.Sprint("k", i), Payload: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	partitions := map[int32]bool{}
	for len(seen) < count {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("received %d of %d: %v", len(seen), count, err)
		}
		cons.Ack(m)
		seen[string(m.Payload)] = true
		partitions[m.ID.Partition] = true
	}
	if !partitions[2] || !partitions[3] {
		t.Fatalf("messages came from partitions %v, want the new ones among them", partitions)
	}
	read := map[string]bool{}
	for len(read) < count {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("reader: %d of %d: %v", len(read), count, err)
		}
		read[string(m.Payload)] = true
	}
}
