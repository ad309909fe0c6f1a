package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/client"
)

// TestTopicPolicyOverridesItsNamespaceOnARealStandalone: a topic's own
// policy, set from the command line, overrides its namespace's where it
// sets a field (the message size limit, for a topic and for every
// partition of a partitioned one), keeps the namespace's elsewhere, takes
// effect on a topic already served, and once removed gives the namespace's
// back.
func TestTopicPolicyOverridesItsNamespaceOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.start()
	url := s.url()
	cli := cliAt(t, url)
	policy := func(topic string) (own map[string]any, eff map[string]any) {
		t.Helper()
		var v struct {
			Policy    map[string]any `json:"policy"`
			Effective map[string]any `json:"effective"`
		}
		if err := json.Unmarshal([]byte(cli("", "topics", "get-policy", topic)), &v); err != nil {
			t.Fatal(err)
		}
		return v.Policy, v.Effective
	}
	produce := func(topic string, size int) error {
		_, _, err := run(t, strings.Repeat("x", size)+"\n", "produce", "--topic", topic, "--url", url)
		return err
	}

	cli("", "namespaces", "set-policy", "public/default", "--ttl", "1d")
	cli("", "produce", "--topic", "limited", "--count", "1", "--size", "2048") // served before its policy
	cli("", "topics", "set-policy", "limited", "--max-message-size", "1KiB")
	own, eff := policy("limited")
	if len(own) != 1 || own["max_message_bytes"] != 1024.0 || eff["max_message_bytes"] != 1024.0 || eff["ttl"] != "1d" {
		t.Fatalf("own %v, effective %v", own, eff)
	}
	if err := produce("limited", 2048); !errors.Is(err, client.ErrMessageTooLarge) {
		t.Fatalf("2 KiB under the topic's 1 KiB limit: %v, want ErrMessageTooLarge", err)
	}
	if err := produce("limited", 512); err != nil {
		t.Fatal(err)
	}
	if err := produce("other", 2048); err != nil {
		t.Fatalf("another topic of the namespace: %v", err)
	}

	cli("", "topics", "create", "parted", "--partitions", "2")
	cli("", "topics", "set-policy", "parted", "--max-message-size", "1KiB")
	if err := produce("parted", 2048); !errors.Is(err, client.ErrMessageTooLarge) {
		t.Fatalf("2 KiB to a partitioned topic limited to 1 KiB: %v, want ErrMessageTooLarge", err)
	}
	if _, _, err := run(t, "", "topics", "set-policy", "parted-partition-0", "--ttl", "1h", "--url", url); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("a partition's policy: %v, want ErrInvalidArgument", err)
	}
	if _, _, err := run(t, "", "topics", "set-policy", "limited", "--retention", "-2", "--url", url); err == nil {
		t.Fatal("retention -2 was accepted")
	}

	cli("", "topics", "remove-policy", "limited")
	if own, eff := policy("limited"); len(own) != 0 || eff["max_message_bytes"] != float64(5<<20) {
		t.Fatalf("after remove-policy: own %v, effective %v", own, eff)
	}
	if err := produce("limited", 2048); err != nil {
		t.Fatalf("after remove-policy: %v", err)
	}
}

// TestALimitLoweredUnderAnOpenProducerFailsOnlyTheLargeMessage: when a
// topic policy lowers the size limit under a producer that opened with the
// old one, the node refuses the first batch over it after the receipts of
// the batches before it, so the SDK fails that message alone, keeps its
// stream (no reconnect) and delivers everything around it.
func TestALimitLoweredUnderAnOpenProducerFailsOnlyTheLargeMessage(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, time.Minute)
	reg := prometheus.NewRegistry()
	c := s.client(client.Metrics(reg))
	// A batch per message, pipelined: the large one's batch is refused
	// while batches before it are in flight.
	p, err := c.NewProducer(ctx, "shrinking", client.ProducerBatchMaxMessages(1))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("open")}); err != nil {
		t.Fatal(err)
	}
	small := uint64(1024)
	if err := c.Admin().SetTopicPolicy(ctx, "shrinking", client.TopicPolicy{MaxMessageBytes: &small}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var failed []int
	cb := func(i int) func(client.MessageID, *client.ProducerMessage, error) {
		return func(_ client.MessageID, _ *client.ProducerMessage, err error) {
			if err != nil {
				mu.Lock()
				failed = append(failed, i)
				mu.Unlock()
				if !errors.Is(err, client.ErrMessageTooLarge) {
					t.Errorf("message %d: %v", i, err)
				}
			}
		}
	}
	for i := range 300 {
		payload := []byte("small")
		if i == 150 {
			payload = make([]byte, 2048) // over the new limit, under the one the producer knows
		}
		p.SendAsync(ctx, &client.ProducerMessage{Payload: payload}, cb(i))
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(failed) != "[150]" {
		t.Fatalf("failed messages %v, want only the large one", failed)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "strata_client_producer_reconnects_total" && mf.GetMetric()[0].GetCounter().GetValue() != 0 {
			t.Fatalf("the producer reconnected %v times", mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
}
