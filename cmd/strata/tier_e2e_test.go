package main

import (
	"encoding/json"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A standalone offloads to <data-dir>/objects: after a restart closes the
// first ledger, `strata topics offload` writes it as .arrow files there, and
// consumers read the same messages back.
func TestStandaloneOffloadsToTheDataDirObjectsFolderAndConsumersReadItBack(t *testing.T) {
	s := newStandalone(t)
	s.start()
	if _, stderr, err := run(t, "one\ntwo\nthree\n", "produce", "--url", s.url(), "--topic", "tiered", "--key", "k"); err != nil {
		t.Fatalf("produce: %v (%s)", err, stderr)
	}
	s.kill()
	s.start() // once the old lease expires, the first ledger is recovered and closed
	var out string
	var err error
	waitFor(t, 30*time.Second, "topics offload", func() bool {
		out, _, err = run(t, "", "topics", "offload", "tiered", "--url", s.url())
		return err == nil
	})
	if !strings.Contains(out, "offloaded 1 ledgers") {
		t.Fatalf("topics offload: %q", out)
	}
	var arrows []string
	_ = filepath.WalkDir(filepath.Join(s.dir, "objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".arrow") {
			arrows = append(arrows, p)
		}
		return nil
	})
	if len(arrows) == 0 {
		t.Fatalf("no .arrow object under %s/objects", s.dir)
	}
	out, _, err = run(t, "", "topics", "stats", "tiered", "--url", s.url())
	if err != nil || !strings.Contains(out, "offloaded") {
		t.Fatalf("stats: %v %q", err, out)
	}
	out, _, err = run(t, "", "consume", "--url", s.url(), "--topic", "tiered", "--subscription", "s",
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
		if m["payload"] != want || m["key"] != "k" {
			t.Fatalf("line %d: %s", i, lines[i])
		}
	}
}

// `strata topics stats` on a real standalone reports backlog_bytes: above
// zero and at most the stored bytes while messages wait, zero once every
// message is acknowledged.
func TestTopicsStatsBacklogBytesFallsToZeroOnceAllIsAcknowledged(t *testing.T) {
	s := newStandalone(t)
	s.start()
	if _, stderr, err := run(t, "a\nb\nc\nd\n", "produce", "--url", s.url(), "--topic", "lag"); err != nil {
		t.Fatalf("produce: %v (%s)", err, stderr)
	}
	consume := func(n string) {
		t.Helper()
		if _, stderr, err := run(t, "", "consume", "--url", s.url(), "--topic", "lag", "--subscription", "s",
			"--position", "earliest", "--count", n, "--timeout", "20s"); err != nil {
			t.Fatalf("consume %s: %v (%s)", n, err, stderr)
		}
	}
	type stats struct {
		StorageBytes  uint64 `json:"storage_bytes"`
		Subscriptions []struct {
			BacklogBytes uint64 `json:"backlog_bytes"`
		} `json:"subscriptions"`
	}
	read := func() stats {
		t.Helper()
		out, _, err := run(t, "", "topics", "stats", "lag", "--url", s.url())
		var st stats
		if err == nil {
			err = json.Unmarshal([]byte(out), &st)
		}
		if err != nil || len(st.Subscriptions) != 1 {
			t.Fatalf("stats: %v %q", err, out)
		}
		return st
	}
	consume("2")
	if st := read(); st.Subscriptions[0].BacklogBytes == 0 || st.Subscriptions[0].BacklogBytes > st.StorageBytes {
		t.Fatalf("with 2 of 4 messages acknowledged: backlog_bytes %d of %d stored", st.Subscriptions[0].BacklogBytes, st.StorageBytes)
	}
	consume("2")
	waitFor(t, 30*time.Second, "backlog_bytes 0", func() bool { return read().Subscriptions[0].BacklogBytes == 0 })
}
