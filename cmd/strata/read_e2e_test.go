package main

import (
	"slices"
	"strings"
	"testing"
)

// TestReadCommandReadsToTheEndFromEachStartAndCompacted: `strata read` on a
// real standalone reads a topic to its end from the earliest message, from
// a message id and compacted, makes no subscription, and exits 1 when a
// timeout comes before the end it was asked for.
func TestReadCommandReadsToTheEndFromEachStartAndCompacted(t *testing.T) {
	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	for _, kv := range []string{"a=1", "b=2", "a=3"} {
		k, v, _ := strings.Cut(kv, "=")
		cli(v+"\n", "produce", "--topic", "levels", "--key", k)
	}
	all := cli("", "read", "--topic", "levels", "--to-end", "--timeout", "20s")
	if got := payloads(all); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Fatalf("read --to-end: %q", got)
	}
	second := strings.Split(strings.Split(all, "\n")[1], "\t")[0]
	if got := payloads(cli("", "read", "--topic", "levels", "--start", second, "--to-end", "--timeout", "20s")); !slices.Equal(got, []string{"2", "3"}) {
		t.Fatalf("read --start %s: %q", second, got)
	}
	cli("", "topics", "compact", "levels")
	cli("4\n", "produce", "--topic", "levels", "--key", "b")
	if got := payloads(cli("", "read", "--topic", "levels", "--compacted", "--to-end", "--timeout", "20s")); !slices.Equal(got, []string{"2", "3", "4"}) {
		t.Fatalf("read --compacted: %q, want b's and a's latest, then what followed", got)
	}
	if out := cli("", "read", "--topic", "levels", "--start", "latest", "--to-end", "--timeout", "20s"); out != "" {
		t.Fatalf("read from the latest to the end printed %q", out)
	}
	if _, _, err := run(t, "", "read", "--topic", "levels", "--start", "latest", "--count", "1", "--timeout", "500ms", "--url", s.url()); err == nil {
		t.Fatal("a read that timed out before its count exited 0")
	}
	if _, _, err := run(t, "", "read", "--topic", "levels", "--start", "tomorrowish", "--url", s.url()); err == nil {
		t.Fatal("--start tomorrowish was accepted")
	}
	if subs := cli("", "subscriptions", "list", "--topic", "levels"); strings.Count(subs, "\n") > 1 {
		t.Fatalf("reads left subscriptions behind:\n%s", subs)
	}
}
