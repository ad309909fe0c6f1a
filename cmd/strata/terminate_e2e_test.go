package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestTerminatedTopicTakesNoMoreAndItsConsumersSeeItsEnd: on a real
// standalone, `strata topics terminate` seals a topic (every partition of
// a partitioned one): sends fail with ErrTopicTerminated, a consumer gets
// every message and then ErrTopicTerminated from Receive, and `strata
// consume` stops at the end of the topic.
func TestTerminatedTopicTakesNoMoreAndItsConsumersSeeItsEnd(t *testing.T) {
	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	ctx := testContext(t, time.Minute)
	c := s.client()
	cli("a\nb\nc\n", "produce", "--topic", "sealed")
	cons, err := c.Subscribe(ctx, "sealed", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if out := cli("", "topics", "terminate", "sealed"); !strings.Contains(out, "partition 0: terminated, last message ") || strings.Contains(out, "none") {
		t.Fatalf("terminate printed %q", out)
	}
	if st, err := c.Admin().TopicStats(ctx, "sealed"); err != nil || st.Terminated == nil || st.Terminated.Entry != 0 {
		t.Fatalf("stats of the terminated topic: %+v %v, want it terminated at its one entry (the three lines went as one batch)", st, err)
	}
	if _, _, err := run(t, "d\n", "produce", "--topic", "sealed", "--url", s.url()); !errors.Is(err, client.ErrTopicTerminated) {
		t.Fatalf("produce to a terminated topic: %v, want ErrTopicTerminated", err)
	}
	for i := range 3 {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		_ = cons.Ack(m)
	}
	if _, err := cons.Receive(ctx); !errors.Is(err, client.ErrTopicTerminated) || !cons.HasReachedEndOfTopic() {
		t.Fatalf("Receive after the last message: %v (end %v), want ErrTopicTerminated", err, cons.HasReachedEndOfTopic())
	}
	out, errOut, err := run(t, "", "consume", "--topic", "sealed", "--subscription", "late", "--position", "earliest",
		"--timeout", "20s", "--url", s.url())
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(errOut, "end of topic") {
		t.Fatalf("consume of a terminated topic: %v\n%s%s", err, out, errOut)
	}

	cli("", "topics", "create", "sealed-parts", "--partitions", "2")
	if out := cli("", "topics", "terminate", "sealed-parts"); strings.Count(out, "terminated, last message none") != 2 {
		t.Fatalf("terminate of an empty partitioned topic printed %q", out)
	}
	if _, _, err := run(t, "x\n", "produce", "--topic", "sealed-parts", "--url", s.url()); !errors.Is(err, client.ErrTopicTerminated) {
		t.Fatalf("produce to a terminated partitioned topic: %v, want ErrTopicTerminated", err)
	}
}
