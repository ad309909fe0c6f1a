package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestFailoverSubscriptionOnARealBrokerGivesEachPartitionOneConsumer runs
// two unnamed Failover consumers of a two-partition topic on a real
// standalone: each partition is delivered to exactly one of them, and once
// one closes, the other receives its partition too, losing nothing.
func TestFailoverSubscriptionOnARealBrokerGivesEachPartitionOneConsumer(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	if err := c.Admin().CreateTopic(ctx, "fo", 2); err != nil {
		t.Fatal(err)
	}
	consumers, got := ackingConsumers(ctx, t, c, "fo", 2, func(int) []client.ConsumerOption {
		return []client.ConsumerOption{client.ConsumerType(client.Failover), client.ConsumerInitialPosition(client.Earliest)}
	})
	p, err := c.NewProducer(ctx, "fo")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	servedBy := map[int32]map[int]bool{}
	exchange := func(from, to int) {
		for i := from; i < to; i++ { // keys spread the messages over both partitions
			if _, err := p.Send(ctx, &client.ProducerMessage{Key: fmt.Sprintf("k%d", i), Payload: []byte(fmt.Sprintf("m%d", i))}); err != nil {
				t.Fatal(err)
			}
		}
		for range to - from {
			select {
			case d := <-got:
				seen[string(d.m.Payload)] = true
				if servedBy[d.m.ID.Partition] == nil {
					servedBy[d.m.ID.Partition] = map[int]bool{}
				}
				servedBy[d.m.ID.Partition][d.by] = true
			case <-ctx.Done():
				t.Fatalf("received %d of %d", len(seen), to)
			}
		}
	}
	exchange(0, 40)
	if len(servedBy) != 2 || len(servedBy[0]) != 1 || len(servedBy[1]) != 1 || servedBy[0][0] == servedBy[1][0] {
		t.Fatalf("partitions served by %v, want each by one consumer, a different one", servedBy)
	}
	consumers[0].Close()
	clear(servedBy)
	exchange(40, 60)
	if !servedBy[0][1] || !servedBy[1][1] || servedBy[0][0] || servedBy[1][0] {
		t.Fatalf("after the first consumer closed, partitions served by %v, want both by the second", servedBy)
	}
	for i := range 60 {
		if !seen[fmt.Sprintf("m%d", i)] {
			t.Fatalf("m%d never received", i)
		}
	}
}

// delivery is a message and the index of the consumer that received it.
type delivery struct {
	by int
	m  *client.Message
}

// ackingConsumers subscribes n consumers to topic's subscription "s", with
// opts(i) for consumer i, each acknowledging every message it receives
// and reporting it on the channel returned. They close with the test.
func ackingConsumers(ctx context.Context, t *testing.T, c *client.Client, topic string, n int, opts func(i int) []client.ConsumerOption) ([]*client.Consumer, chan delivery) {
	t.Helper()
	got := make(chan delivery, 1000)
	consumers := make([]*client.Consumer, n)
	for i := range consumers {
		cons, err := c.Subscribe(ctx, topic, "s", opts(i)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cons.Close() })
		consumers[i] = cons
		go func() {
			for {
				m, err := cons.Receive(ctx)
				if err != nil {
					return // closed, or the test is over
				}
				cons.Ack(m)
				got <- delivery{i, m}
			}
		}()
	}
	return consumers, got
}

// TestConsumeCommandChoosesTheActiveFailoverConsumerByName runs two
// `strata consume --type failover --consumer-name` against a real
// standalone: the one whose name sorts first receives, and the other takes
// over when it exits; the topic's stats name the active one each time.
func TestConsumeCommandChoosesTheActiveFailoverConsumerByName(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	admin := s.client().Admin()
	if err := admin.CreateTopic(ctx, "fo-cli", 0); err != nil {
		t.Fatal(err)
	}
	type result struct {
		out string
		err error
	}
	consume := func(name string) chan result {
		done := make(chan result, 1)
		go func() {
			out, _, err := run(t, "", "consume", "--url", s.url(), "--topic", "fo-cli", "--subscription", "s",
				"--type", "failover", "--consumer-name", name, "--position", "earliest", "--count", "1", "--timeout", "25s")
			done <- result{out, err}
		}()
		return done
	}
	activeIs := func(want string) {
		t.Helper()
		waitFor(t, 20*time.Second, "active consumer "+want, func() bool {
			st, err := admin.TopicStats(ctx, "fo-cli")
			return err == nil && len(st.Subscriptions) == 1 && st.Subscriptions[0].ActiveConsumer == want
		})
	}
	standby := consume("worker-z")
	activeIs("worker-z")
	active := consume("worker-a")
	activeIs("worker-a")
	if _, stderr, err := run(t, "one\n", "produce", "--url", s.url(), "--topic", "fo-cli"); err != nil {
		t.Fatalf("produce: %v (%s)", err, stderr)
	}
	if r := <-active; r.err != nil || !strings.Contains(r.out, "one") {
		t.Fatalf("active consumer: %q, %v", r.out, r.err)
	}
	activeIs("worker-z")
	if _, stderr, err := run(t, "two\n", "produce", "--url", s.url(), "--topic", "fo-cli"); err != nil {
		t.Fatalf("produce: %v (%s)", err, stderr)
	}
	if r := <-standby; r.err != nil || !strings.Contains(r.out, "two") {
		t.Fatalf("standby consumer: %q, %v", r.out, r.err)
	}
}
