package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client/fakebroker"
	"github.com/strata-mq/strata/internal/errcode"
)

// run executes the strata command line with args and stdin.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func fakeCluster(t *testing.T) (*fakebroker.Cluster, string) {
	t.Helper()
	cl := fakebroker.NewCluster()
	b := fakebroker.Start(t, cl)
	return cl, b.URL()
}

func TestProduceStdinLinesThenConsumeThemAsJSONLines(t *testing.T) {
	cl, url := fakeCluster(t)
	if _, _, err := run(t, "", "topics", "create", "events", "--url", url); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := run(t, "one\ntwo\nthree\n", "produce", "--url", url, "--topic", "events", "--key", "k")
	if err != nil {
		t.Fatalf("produce: %v (%s)", err, stderr)
	}
	if !strings.Contains(stderr, "produced 3 of 3") {
		t.Fatalf("produce summary %q", stderr)
	}
	if n := len(cl.Messages("public/default/events")); n != 3 {
		t.Fatalf("%d messages stored, want 3", n)
	}
	out, _, err := run(t, "", "consume", "--url", url, "--topic", "events", "--subscription", "s",
		"--position", "earliest", "--count", "3", "--output", "jsonl", "--timeout", "20s")
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("consume printed %d lines: %q", len(lines), out)
	}
	for i, want := range []string{"one", "two", "three"} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatal(err)
		}
		if m["payload"] != want || m["key"] != "k" || m["topic"] != "public/default/events" || m["id"] == "" || m["publish_time"] == "" {
			t.Fatalf("line %d: %s", i, lines[i])
		}
	}
}

func TestProduceGeneratedPayloadsOfTheGivenSize(t *testing.T) {
	cl, url := fakeCluster(t)
	if err := cl.CreateTopic("t", 0); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := run(t, "", "produce", "--url", url, "--topic", "t", "--count", "5", "--size", "20"); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	msgs := cl.Messages("public/default/t")
	if len(msgs) != 5 {
		t.Fatalf("%d messages, want 5", len(msgs))
	}
	for _, m := range msgs {
		if len(m.GetPayload()) != 20 {
			t.Fatalf("payload of %d bytes, want 20", len(m.GetPayload()))
		}
	}
}

func TestProduceExitsNonZeroWithTheFailureCount(t *testing.T) {
	cl, url := fakeCluster(t)
	cl.MaxMessageBytes = 10
	if err := cl.CreateTopic("t", 0); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, "", "produce", "--url", url, "--topic", "t", "--count", "4", "--size", "20")
	if err == nil || exitCode(err) == 0 || !strings.Contains(err.Error(), "4 of 4 messages failed") {
		t.Fatalf("got %v (exit %d), want a non-zero exit naming 4 failures", err, exitCode(err))
	}
}

func TestProduceNotAcknowledgedWithinTimeoutFailsAsTimeoutNotClosed(t *testing.T) {
	cl := fakebroker.NewCluster()
	b := fakebroker.Start(t, cl)
	if err := cl.CreateTopic("t", 0); err != nil {
		t.Fatal(err)
	}
	// A node that cannot reach ack quorum keeps the batches and answers
	// nothing.
	b.HoldReceipts()
	t.Cleanup(b.ReleaseReceipts)
	_, _, err := run(t, "", "produce", "--url", b.URL(), "--topic", "t", "--count", "3", "--timeout", "300ms")
	if code := errcode.CodeOf(err); code != errcode.Timeout || exitCode(err) != 1 || !strings.Contains(err.Error(), "3 of 3 messages failed") {
		t.Fatalf("got %v (code %s, exit %d), want 3 of 3 messages failed with TIMEOUT, exit 1", err, code, exitCode(err))
	}
}

func TestProduceToMissingTopicFails(t *testing.T) {
	_, url := fakeCluster(t)
	_, _, err := run(t, "x\n", "produce", "--url", url, "--topic", "missing")
	if err == nil || !strings.Contains(err.Error(), "TOPIC_NOT_FOUND") {
		t.Fatalf("got %v", err)
	}
}

func TestConsumeExitsNonZeroWhenTimeoutComesBeforeCount(t *testing.T) {
	cl, url := fakeCluster(t)
	if err := cl.CreateTopic("t", 0); err != nil {
		t.Fatal(err)
	}
	cl.Publish("public/default/t", "a", "b")
	out, _, err := run(t, "", "consume", "--url", url, "--topic", "t", "--subscription", "s",
		"--position", "earliest", "--count", "5", "--timeout", "300ms")
	if err == nil || exitCode(err) == 0 || !strings.Contains(err.Error(), "2 of 5") {
		t.Fatalf("got %v, want a non-zero exit after 2 of 5", err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[0], "\ta") {
		t.Fatalf("text output %q", out)
	}
}

// Bad flag values are refused with the error code a program can act on:
// an unknown subscription type is INVALID_SUBSCRIPTION, as the node itself
// answers it, the others INVALID_ARGUMENT.
func TestConsumeRejectsBadFlagValuesWithTypedErrors(t *testing.T) {
	_, url := fakeCluster(t)
	for _, c := range []struct {
		args []string
		want errcode.Code
	}{
		{[]string{"--type", "fanout"}, errcode.InvalidSubscription},
		{[]string{"--position", "middle"}, errcode.InvalidArgument},
		{[]string{"--output", "xml"}, errcode.InvalidArgument},
		{[]string{"--count", "-1"}, errcode.InvalidArgument},
	} {
		base := []string{"consume", "--url", url, "--topic", "t", "--subscription", "s"}
		if _, _, err := run(t, "", append(base, c.args...)...); errcode.CodeOf(err) != c.want {
			t.Errorf("%v: %v, want %v", c.args, err, c.want)
		}
	}
}

func TestSetPolicyChangesOnlyTheFlagsGiven(t *testing.T) {
	_, url := fakeCluster(t)
	if _, _, err := run(t, "", "namespaces", "set-policy", "public/default", "--url", url,
		"--offload-threshold", "0", "--offload-age", "0", "--retention", "7d"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "", "namespaces", "set-policy", "public/default", "--url", url, "--ttl", "1h", "--max-message-size", "1MiB",
		"--backlog-quota", "2GiB"); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "", "namespaces", "get-policy", "public/default", "--url", url)
	if err != nil {
		t.Fatal(err)
	}
	var p policyJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	want := policyJSON{Retention: "7d", TTL: "1h0m0s", MaxMessageBytes: 1 << 20, OffloadThresholdBytes: 0, OffloadAge: "0", OffloadDeletionLag: "0",
		BacklogQuotaBytes: 2 << 30, BacklogQuotaPolicy: "producer_exception", SchemaCompatibility: "FULL", SchemaAutoUpdate: true}
	if p != want {
		t.Fatalf("policy %+v, want %+v", p, want)
	}
	if _, _, err := run(t, "", "namespaces", "set-policy", "public/default", "--url", url, "--retention", "soon"); err == nil {
		t.Fatal("bad retention accepted")
	}
}

func TestSubscriptionResetPrintsPlanAndAppliesOnlyWithExecute(t *testing.T) {
	cl, url := fakeCluster(t)
	if err := cl.CreateTopic("t", 0); err != nil {
		t.Fatal(err)
	}
	cl.Publish("public/default/t", "a", "b", "c")
	if _, _, err := run(t, "", "consume", "--url", url, "--topic", "t", "--subscription", "s", "--position", "earliest", "--count", "3"); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "", "subscriptions", "reset", "--url", url, "--topic", "t", "--subscription", "s", "--time", "-1h")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "1:0:0") || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run output %q", out)
	}
	if _, _, err := run(t, "", "consume", "--url", url, "--topic", "t", "--subscription", "s", "--count", "1", "--timeout", "200ms"); err == nil {
		t.Fatal("dry run moved the cursor: messages came again")
	}
	out, _, err = run(t, "", "subscriptions", "reset", "--url", url, "--topic", "t", "--subscription", "s", "--time", "-1h", "--execute")
	if err != nil || !strings.Contains(out, "subscription reset") {
		t.Fatalf("execute: %v %q", err, out)
	}
	if _, _, err := run(t, "", "consume", "--url", url, "--topic", "t", "--subscription", "s", "--count", "3", "--timeout", "20s"); err != nil {
		t.Fatalf("after an executed reset the 3 messages should come again: %v", err)
	}
	if _, _, err := run(t, "", "subscriptions", "reset", "--url", url, "--topic", "t", "--subscription", "s", "--time", "yesterday"); err == nil {
		t.Fatal("bad time accepted")
	}
	if _, _, err := run(t, "", "subscriptions", "delete", "--url", url, "--topic", "t", "--subscription", "s"); err != nil {
		t.Fatal(err)
	}
}

func TestTopicsListStatsDelete(t *testing.T) {
	_, url := fakeCluster(t)
	if _, _, err := run(t, "", "topics", "create", "p", "--partitions", "2", "--url", url); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "", "topics", "list", "public/default", "--url", url)
	if err != nil || !strings.Contains(out, "public/default/p") {
		t.Fatalf("list: %v %q", err, out)
	}
	out, _, err = run(t, "", "topics", "stats", "p", "--url", url)
	if err != nil {
		t.Fatal(err)
	}
	var stats []map[string]any
	if err := json.Unmarshal([]byte(out), &stats); err != nil || len(stats) != 2 {
		t.Fatalf("stats of 2 partitions: %v %q", err, out)
	}
	if _, _, err := run(t, "", "topics", "delete", "p", "--url", url); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "", "topics", "stats", "p", "--url", url); err == nil {
		t.Fatal("stats of a deleted topic succeeded")
	}
}
