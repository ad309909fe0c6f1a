package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
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
