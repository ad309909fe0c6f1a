package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/strata-mq/strata/client"
)

// TestWithoutAutoCreationOnlyCreatedTopicsTakeMessages: a standalone run
// with --allow-auto-topic-creation=false refuses to produce to or consume
// from a topic nobody created, with ErrTopicNotFound and without making
// it, and serves the topics created with topics create as usual.
func TestWithoutAutoCreationOnlyCreatedTopicsTakeMessages(t *testing.T) {
	s := newStandalone(t)
	s.extraArgs = []string{"--allow-auto-topic-creation=false"}
	s.start()
	url := s.url()
	cli := cliAt(t, url)
	if _, _, err := run(t, "x\n", "produce", "--topic", "ordrs", "--url", url); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("produce to a topic nobody created: %v, want ErrTopicNotFound", err)
	}
	if _, _, err := run(t, "", "consume", "--topic", "ordrs", "--subscription", "s", "--count", "1", "--timeout", "5s", "--url", url); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("consume from a topic nobody created: %v, want ErrTopicNotFound", err)
	}
	cli("", "topics", "create", "orders")
	cli("", "topics", "create", "parted", "--partitions", "2")
	cli("", "subscriptions", "create", "--topic", "orders", "--subscription", "s")
	cli("a\nb\n", "produce", "--topic", "orders")
	cli("c\n", "produce", "--topic", "parted")
	if got := payloads(cli("", "consume", "--topic", "orders", "--subscription", "s", "--count", "2", "--timeout", "20s")); strings.Join(got, ",") != "a,b" {
		t.Fatalf("consumed %q from a created topic", got)
	}
	if list := cli("", "topics", "list", "public/default"); strings.Contains(list, "ordrs") {
		t.Fatalf("the misspelt topic was made:\n%s", list)
	}
}
