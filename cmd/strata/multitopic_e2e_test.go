package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestPatternConsumerFollowsMatchingTopicsAsTheyComeAndGo: on a real
// standalone, a pattern consumer receives every message of the matching
// topics (a partitioned one included) once and none of the others,
// subscribes to a matching topic created later (from its earliest
// message), and lets a deleted one go; a consumer of an explicit list of
// topics merges them too. Topics are created explicitly: with automatic
// creation, a topic deleted under its consumers is created again by their
// resubscription, as in Pulsar.
func TestPatternConsumerFollowsMatchingTopicsAsTheyComeAndGo(t *testing.T) {
	s := newStandalone(t)
	s.extraArgs = []string{"--allow-auto-topic-creation=false"}
	s.start()
	cli := cliAt(t, s.url())
	ctx := testContext(t, time.Minute)
	c := s.client()
	cli("", "topics", "create", "logs-a")
	cli("", "topics", "create", "other")
	cli("", "topics", "create", "logs-b", "--partitions", "2")
	send := func(topicName string, n int) {
		t.Helper()
		p, err := c.NewProducer(ctx, topicName)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for i := range n {
			if _, err := p.Send(ctx, &client.ProducerMessage{Key: fmt.Sprint(i), Payload: fmt.Appendf(nil, "%s-%d", topicName, i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	send("logs-a", 3)
	send("logs-b", 4)
	send("other", 2)

	m, err := c.SubscribePattern(ctx, "public/default/logs-.*", "all", client.ConsumerInitialPosition(client.Earliest),
		client.ConsumerPatternDiscovery(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	receive := func(m *client.MultiConsumer, n int) []string {
		t.Helper()
		var got []string
		for range n {
			msg, err := m.Receive(ctx)
			if err != nil {
				t.Fatalf("after %v: %v", got, err)
			}
			got = append(got, string(msg.Payload))
			if err := m.Ack(msg); err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(got)
		return got
	}
	want := []string{"logs-a-0", "logs-a-1", "logs-a-2", "logs-b-0", "logs-b-1", "logs-b-2", "logs-b-3"}
	if got := receive(m, 7); !slices.Equal(got, want) {
		t.Fatalf("pattern consumer got %q, want %q", got, want)
	}
	cli("", "topics", "create", "logs-c") // after the subscribe
	send("logs-c", 2)
	if got := receive(m, 2); !slices.Equal(got, []string{"logs-c-0", "logs-c-1"}) {
		t.Fatalf("from the topic created later: %q", got)
	}
	// The acknowledgements reached each message's own topic.
	waitFor(t, 30*time.Second, "the pattern subscription's backlogs drained", func() bool {
		for _, part := range []string{"logs-a", "logs-b-partition-0", "logs-b-partition-1", "logs-c"} {
			st, err := c.Admin().TopicStats(ctx, part)
			if err != nil {
				return false
			}
			for _, sub := range st.Subscriptions {
				if sub.Name == "all" && sub.Backlog != 0 {
					return false
				}
			}
		}
		return true
	})
	cli("", "topics", "delete", "logs-a", "--force")
	waitFor(t, 30*time.Second, "the deleted topic left", func() bool {
		return !slices.Contains(m.Topics(), "public/default/logs-a")
	})
	if topics := m.Topics(); !slices.Contains(topics, "public/default/logs-b") || !slices.Contains(topics, "public/default/logs-c") {
		t.Fatalf("topics %v", topics)
	}

	l, err := c.SubscribeTopics(ctx, []string{"other", "logs-b"}, "pick", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := receive(l, 6); !slices.Equal(got, []string{"logs-b-0", "logs-b-1", "logs-b-2", "logs-b-3", "other-0", "other-1"}) {
		t.Fatalf("list consumer got %q", got)
	}
	if _, err := c.SubscribePattern(ctx, "public/default/logs-(", "bad"); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("a bad pattern: %v, want ErrInvalidArgument", err)
	}

	out := cli("", "consume", "--topic-pattern", "public/default/logs-.*", "--subscription", "cli", "--position", "earliest",
		"--count", "6", "--timeout", "20s", "--output", "jsonl")
	if n := strings.Count(out, "\n"); n != 6 || strings.Contains(out, "other-") {
		t.Fatalf("consume --topic-pattern printed %d lines:\n%s", n, out)
	}
	if _, _, err := run(t, "", "consume", "--topic", "other", "--topic-pattern", "logs-.*", "--subscription", "x", "--url", s.url()); err == nil {
		t.Fatal("--topic with --topic-pattern was accepted")
	}
}
