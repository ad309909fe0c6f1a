package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

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

// TestTopicsCreatedOnFirstUseGetTheDefaultPartitions: with
// --default-num-partitions 3, a producer's and a consumer's first use of a
// topic creates it with three partitions, and keyed messages spread over
// them and come back to a consumer whole; a topic created by hand, and a
// partition's own name, are left as they are; with auto-creation off the
// default does not apply.
func TestTopicsCreatedOnFirstUseGetTheDefaultPartitions(t *testing.T) {
	s := newStandalone(t)
	s.extraArgs = []string{"--default-num-partitions", "3"}
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client()
	admin := c.Admin()
	cons, err := c.Subscribe(ctx, "events", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := admin.GetTopic(ctx, "events"); err != nil || info.Partitions != 3 {
		t.Fatalf("a topic first used by a consumer: %+v, %v", info, err)
	}
	p, err := c.NewProducer(ctx, "clicks")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := admin.GetTopic(ctx, "clicks"); err != nil || info.Partitions != 3 {
		t.Fatalf("a topic first used by a producer: %+v, %v", info, err)
	}
	ep, err := c.NewProducer(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	partitions := map[int32]bool{}
	for i := range 30 {
		id, err := ep.Send(ctx, &client.ProducerMessage{Key: fmt.Sprintf("user-%d", i), Payload: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		partitions[id.Partition] = true
	}
	if len(partitions) != 3 {
		t.Fatalf("30 keys went to partitions %v", partitions)
	}
	for range 30 {
		if _, err := cons.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	if err := admin.CreateTopic(ctx, "plain", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewProducer(ctx, "plain"); err != nil {
		t.Fatal(err)
	}
	if info, err := admin.GetTopic(ctx, "plain"); err != nil || info.Partitions != 0 {
		t.Fatalf("a topic created by hand: %+v, %v", info, err)
	}
	if _, err := c.NewProducer(ctx, "loose-partition-5"); err != nil {
		t.Fatal(err)
	}
	if info, err := admin.GetTopic(ctx, "loose-partition-5"); err != nil || info.Partitions != 0 {
		t.Fatalf("a partition's name used first: %+v, %v", info, err)
	}

	off := newStandalone(t)
	off.extraArgs = []string{"--default-num-partitions", "3", "--allow-auto-topic-creation=false"}
	off.start()
	if _, err := off.client().NewProducer(ctx, "nowhere"); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("with auto-creation off: %v, want ErrTopicNotFound", err)
	}
}

// TestClusterCommandListsTheNodeWithItsTopicsAndTheBookie: `strata
// cluster` on a real standalone lists its one serving node with the topics
// it owns, and its bookie.
func TestClusterCommandListsTheNodeWithItsTopicsAndTheBookie(t *testing.T) {
	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	cli("x\n", "produce", "--topic", "one")
	cli("x\n", "produce", "--topic", "two")
	var got struct {
		Nodes []struct {
			ID          string `json:"id"`
			GRPCAddr    string `json:"grpc_addr"`
			OwnedTopics int    `json:"owned_topics"`
		} `json:"nodes"`
		Bookies []struct {
			Addr string `json:"addr"`
		} `json:"bookies"`
	}
	if err := json.Unmarshal([]byte(cli("", "cluster", "--output", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != 1 || got.Nodes[0].OwnedTopics != 2 || got.Nodes[0].GRPCAddr != s.grpc ||
		len(got.Bookies) != 1 || got.Bookies[0].Addr != s.bookie {
		t.Fatalf("cluster: %+v (standalone at %s, bookie %s)", got, s.grpc, s.bookie)
	}
	if out := cli("", "cluster"); !strings.Contains(out, "NODE") || !strings.Contains(out, s.bookie) {
		t.Fatalf("cluster as text:\n%s", out)
	}
}
