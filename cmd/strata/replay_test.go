package main

import (
	"bytes"
	"container/heap"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

func msgAt(ledger uint64, entry int64, batch int32, pub time.Time) *client.Message {
	return &client.Message{ID: client.MessageID{Ledger: ledger, Entry: entry, Batch: batch}, PublishTime: pub}
}

func TestReplayWindowClassifiesByPublishTimeAndEndOfPartition(t *testing.T) {
	t0 := time.Unix(1000, 0)
	win := replayWindow{from: t0, to: t0.Add(time.Minute)}
	// Ledgers 3 (closed, 5 entries), 7 (open, 2 entries), 9 (open, empty).
	end := endFromStats(&client.TopicStats{Ledgers: []client.LedgerStats{
		{Ledger: 3, Entries: 5}, {Ledger: 7, Entries: 2}, {Ledger: 9, Entries: 0}}})
	if !end.known || end.empty || end.endLedger != 7 || end.endEntry != 1 {
		t.Fatalf("end %+v, want known, last entry 7:1", end)
	}
	cases := []struct {
		name string
		m    *client.Message
		want verdict
	}{
		{"before from", msgAt(3, 0, 0, t0.Add(-time.Nanosecond)), skipMessage},
		{"at from (inclusive)", msgAt(3, 1, 0, t0), emitMessage},
		{"inside", msgAt(7, 0, 4, t0.Add(time.Second)), emitMessage},
		{"in the last entry", msgAt(7, 1, 9, t0.Add(2*time.Second)), emitMessage},
		{"at to (exclusive)", msgAt(3, 2, 0, t0.Add(time.Minute)), stopPartition},
		{"after the last entry", msgAt(7, 2, 0, t0.Add(3*time.Second)), stopPartition},
		{"in a later listed ledger", msgAt(9, 0, 0, t0.Add(3*time.Second)), stopPartition},
		{"in a ledger opened after the statistics", msgAt(12, 0, 0, t0.Add(3*time.Second)), stopPartition},
		{"in a ledger trimmed before the statistics", msgAt(1, 0, 0, t0.Add(time.Second)), emitMessage},
	}
	for _, tc := range cases {
		if got := win.classify(tc.m, end); got != tc.want {
			t.Errorf("%s: verdict %d, want %d", tc.name, got, tc.want)
		}
	}
	open := replayWindow{from: t0}
	if got := open.classify(msgAt(3, 4, 0, t0.Add(time.Hour)), end); got != emitMessage {
		t.Errorf("open window: verdict %d for a message before the end, want emit", got)
	}
	if got := open.classify(msgAt(3, 4, 0, t0.Add(time.Hour)), partitionEnd{}); got != emitMessage {
		t.Errorf("unknown end: verdict %d, want emit", got)
	}
}

func TestReplayEndOfPartitionWithoutEntriesOrLedgers(t *testing.T) {
	empty := endFromStats(&client.TopicStats{Ledgers: []client.LedgerStats{{Ledger: 4, Entries: 0}}})
	if !empty.known || !empty.empty {
		t.Fatalf("a partition whose ledgers hold nothing: %+v, want known and empty", empty)
	}
	if v := (replayWindow{}).classify(msgAt(5, 0, 0, time.Now()), empty); v != stopPartition {
		t.Fatalf("message of an empty partition: verdict %d, want stop", v)
	}
	if none := endFromStats(&client.TopicStats{}); none.known {
		t.Fatalf("no ledger listed: %+v, want the end unknown (found by silence)", none)
	}
}

func TestReplayMergeOrdersByPublishTimeThenPartition(t *testing.T) {
	t0 := time.Unix(0, 0)
	p0, p1 := &partReader{index: 0}, &partReader{index: 1}
	var h headHeap
	heap.Push(&h, head{m: msgAt(1, 1, 0, t0.Add(3)), part: p0})
	heap.Push(&h, head{m: msgAt(2, 0, 0, t0.Add(3)), part: p1})
	heap.Push(&h, head{m: msgAt(2, 1, 0, t0.Add(1)), part: p1})
	heap.Push(&h, head{m: msgAt(1, 0, 0, t0.Add(2)), part: p0})
	var got []string
	for h.Len() > 0 {
		x := heap.Pop(&h).(head)
		got = append(got, x.m.ID.String())
	}
	if want := "2:1:0 1:0:0 1:1:0 2:0:0"; strings.Join(got, " ") != want {
		t.Fatalf("merged order %v, want %s", got, want)
	}
}

func TestReplayRateAcceptsNAndNPerSecond(t *testing.T) {
	for in, want := range map[string]float64{"0": 0, "100": 100, "100/s": 100, " 2.5/s": 2.5} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "fast", "10/m", "NaN", "1e12"} {
		if _, err := parseRate(in); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("parseRate(%q): %v, want an invalid-argument error", in, err)
		}
	}
}

func TestReplayOutputFileAppearsOnlyWhenCommitted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	o, err := openOutput(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(o.w, "partial")
	o.discard()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a discarded output left %v", ents)
	}
	o, err = openOutput(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the file exists before the commit: %v", err)
	}
	io.WriteString(o.w, "done")
	if err := o.commit(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "done" {
		t.Fatalf("committed file: %q, %v", b, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("after the commit the directory holds %v, want only the file", ents)
	}
}

func TestReplayTellWriterReportsItsPositionAndRefusesRealSeeks(t *testing.T) {
	var buf bytes.Buffer
	w := &tellWriter{w: &buf}
	io.WriteString(w, "hello")
	if pos, err := w.Seek(0, io.SeekCurrent); err != nil || pos != 5 {
		t.Fatalf("position %d, %v; want 5", pos, err)
	}
	if _, err := w.Seek(0, io.SeekStart); err == nil {
		t.Fatal("seeking to the start of a pipe succeeded")
	}
}

func TestReplayProgressLineShowsCountsShareAndETA(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := &progress{from: t0, to: t0.Add(100 * time.Second), start: t0}
	p.add(&client.Message{Payload: make([]byte, 3<<20), PublishTime: t0.Add(25 * time.Second)})
	line := p.line(t0.Add(10 * time.Second))
	for _, want := range []string{"1 msgs", "3.0 MiB", "25%", "ETA 30s"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %q", line, want)
		}
	}
	if progressWanted("auto", &bytes.Buffer{}) || !progressWanted("always", &bytes.Buffer{}) || progressWanted("never", os.Stderr) {
		t.Error("progressWanted: auto draws only on a terminal, always always, never never")
	}
}

// TestReplayWithServerSideSeekIsExact covers the path the standalone does not
// take yet: a server that places the reader at --from itself (the fake
// broker seeks by time) and gives no ledger statistics (the end is found by
// silence).
func TestReplayWithServerSideSeekIsExact(t *testing.T) {
	cl, url := fakeCluster(t)
	if err := cl.CreateTopic("seek", 0); err != nil {
		t.Fatal(err)
	}
	for _, burst := range []string{"a1\na2\n", "b1\nb2\nb3\n", "c1\n"} {
		if _, stderr, err := run(t, burst, "produce", "--url", url, "--topic", "seek"); err != nil {
			t.Fatalf("produce: %v (%s)", err, stderr)
		}
	}
	msgs := cl.Messages("public/default/seek")
	if len(msgs) != 6 || msgs[2].GetPublishTimeUnixNano() == msgs[5].GetPublishTimeUnixNano() {
		t.Fatalf("fixture: %d messages", len(msgs))
	}
	at := func(i int) string {
		return time.Unix(0, msgs[i].GetPublishTimeUnixNano()).UTC().Format(time.RFC3339Nano)
	}
	out, stderr, err := run(t, "", "replay", "--url", url, "--topic", "seek", "--from", at(2), "--to", at(5),
		"--idle-timeout", "300ms")
	if err != nil {
		t.Fatalf("replay: %v (%s)", err, stderr)
	}
	var got []string
	for _, r := range parseJSONL(t, []byte(out)) {
		got = append(got, string(r.payload))
	}
	if strings.Join(got, " ") != "b1 b2 b3" {
		t.Fatalf("replayed %v, want the second burst exactly", got)
	}
}
