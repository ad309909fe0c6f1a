package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
)

// TestAdminCallsOnAMissingTopicAnswerNotFoundAndCreateNothing: on a real
// standalone, an admin call naming a topic that does not exist answers
// TOPIC_NOT_FOUND and leaves no topic behind (a misspelt name in `strata
// topics stats` used to create the topic it asked about), while a
// subscription made ahead of the first message still creates its topic.
func TestAdminCallsOnAMissingTopicAnswerNotFoundAndCreateNothing(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, time.Minute)
	a := s.client(client.OperationTimeout(20 * time.Second)).Admin()
	calls := map[string]func() error{
		"stats":               func() error { _, err := a.TopicStats(ctx, "nosuch"); return err },
		"unload":              func() error { return a.UnloadTopic(ctx, "nosuch") },
		"delete-subscription": func() error { return a.DeleteSubscription(ctx, "nosuch", "s") },
		"reset-cursor": func() error {
			_, err := a.ResetCursor(ctx, "nosuch", "s", client.CursorTarget{Time: time.Now()}, true)
			return err
		},
		"offload":   func() error { _, err := a.TriggerOffload(ctx, "nosuch"); return err },
		"terminate": func() error { _, err := a.TerminateTopic(ctx, "nosuch"); return err },
		"compact":   func() error { _, err := a.CompactTopic(ctx, "nosuch"); return err },
	}
	for what, call := range calls {
		if err := call(); !errors.Is(err, client.ErrTopicNotFound) {
			t.Errorf("%s on a missing topic: %v, want ErrTopicNotFound", what, err)
		}
	}
	_, errOut, err := run(t, "", "topics", "stats", "nosuch", "--url", s.url())
	if err == nil || !strings.Contains(errOut+err.Error(), "TOPIC_NOT_FOUND") {
		t.Errorf("strata topics stats nosuch: %v %s, want TOPIC_NOT_FOUND", err, errOut)
	}
	topics, err := a.ListTopics(ctx, "public/default")
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) != 0 {
		t.Fatalf("admin calls on a missing topic left topics behind: %v", topics)
	}
	if err := a.CreateSubscription(ctx, "ahead", "s", client.Earliest); err != nil {
		t.Fatalf("a subscription ahead of the topic's first message: %v", err)
	}
	if _, err := a.TopicStats(ctx, "ahead"); err != nil {
		t.Fatalf("stats of the topic the subscription made: %v", err)
	}
}

// TestRefusedRequestsLeaveTopicsAsTheyWere: on a real standalone, requests
// the node or the SDK refuses change nothing. A partitioned topic whose
// second partition has a backlog keeps every partition when its delete is
// refused (partition 0 used to go first); one partition cannot be deleted
// alone; a partition count past 32 bits is refused, not wrapped; a
// subscription name the node cannot store is refused before its topic is
// made; and `produce --size` past what can be generated fails before
// connecting.
func TestRefusedRequestsLeaveTopicsAsTheyWere(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client(client.OperationTimeout(20 * time.Second))
	a := c.Admin()
	if err := a.CreateTopic(ctx, "parted", 2); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateSubscription(ctx, "parted", "s1", client.Earliest); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer(ctx, "parted-partition-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("backlog")}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := a.DeleteTopic(ctx, "parted", false); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("delete of a topic with a backlog: %v, want ErrInvalidArgument", err)
	}
	if err := a.DeleteTopic(ctx, "parted-partition-1", true); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("delete of one partition: %v, want ErrInvalidArgument", err)
	}
	for _, part := range []string{"parted-partition-0", "parted-partition-1"} {
		if _, err := a.TopicStats(ctx, part); err != nil {
			t.Fatalf("%s after the refused deletes: %v", part, err)
		}
	}
	if err := a.CreateTopic(ctx, "wrapped", 1<<32+3); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("2^32+3 partitions: %v, want ErrInvalidArgument", err)
	}
	if err := a.AddPartitions(ctx, "parted", 1<<32+4); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("raise to 2^32+4 partitions: %v, want ErrInvalidArgument", err)
	}
	if _, err := c.Subscribe(ctx, "bysub", "a/b"); !errors.Is(err, client.ErrInvalidSubscription) {
		t.Fatalf("subscribe as a/b: %v, want ErrInvalidSubscription", err)
	}
	if err := a.CreateSubscription(ctx, "byadmin", "s/x", client.Earliest); !errors.Is(err, client.ErrInvalidSubscription) {
		t.Fatalf("create subscription s/x: %v, want ErrInvalidSubscription", err)
	}
	if _, _, err := run(t, "", "produce", "--url", s.url(), "--topic", "huge", "--count", "1", "--size", "99999999999"); errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("produce --size 99999999999: %v, want INVALID_ARGUMENT", err)
	}
	topics, err := a.ListTopics(ctx, "public/default")
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) != 1 || topics[0].Topic != "public/default/parted" || topics[0].Partitions != 2 {
		t.Fatalf("topics after the refused requests: %+v, want only parted with 2 partitions", topics)
	}
}
