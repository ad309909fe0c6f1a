package main

import (
	"strings"
	"testing"
)

// TestSubscriptionResetByTimeOnARealBrokerRedeliversOnlyWithExecute runs
// `strata subscriptions reset --time` against a real standalone (its other
// test uses a fake broker): without --execute it only prints the position;
// with it, the consumed messages are delivered again.
func TestSubscriptionResetByTimeOnARealBrokerRedeliversOnlyWithExecute(t *testing.T) {
	s := newStandalone(t)
	s.start()
	url := s.url()
	if _, _, err := run(t, "a\nb\nc\n", "produce", "--url", url, "--topic", "reset"); err != nil {
		t.Fatal(err)
	}
	consume := func(count, timeout string) (string, error) {
		out, _, err := run(t, "", "consume", "--url", url, "--topic", "reset", "--subscription", "s",
			"--position", "earliest", "--count", count, "--timeout", timeout)
		return out, err
	}
	if _, err := consume("3", "20s"); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "", "subscriptions", "reset", "--url", url, "--topic", "reset", "--subscription", "s", "--time", "-1h")
	if err != nil || !strings.Contains(out, ":") {
		t.Fatalf("dry run: %q, %v", out, err)
	}
	if _, err := consume("1", "500ms"); err == nil {
		t.Fatal("a dry run moved the cursor: a message was delivered again")
	}
	if _, _, err := run(t, "", "subscriptions", "reset", "--url", url, "--topic", "reset", "--subscription", "s", "--time", "-1h", "--execute"); err != nil {
		t.Fatal(err)
	}
	got, err := consume("3", "20s")
	if err != nil {
		t.Fatalf("after reset --execute: %v", err)
	}
	for _, want := range []string{"a", "b", "c"} {
		if !strings.Contains(got, want) {
			t.Fatalf("redelivered %q, missing %q", got, want)
		}
	}
}
