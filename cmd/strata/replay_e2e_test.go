package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
)

// replayed is one message as a replay output or a reader shows it.
type replayed struct {
	topic, id, key string
	payload        []byte
	publish        time.Time
	eventTime      time.Time
	props          map[string]string
}

func (r replayed) ident() string { return r.topic + "@" + r.id }

// replayFixture is a standalone holding a 3-partition topic written in
// three bursts, with every message's publish time as a reader saw it.
type replayFixture struct {
	s    *standalone
	c    *client.Client
	src  string
	all  []replayed // reader order: per partition in id order
	from time.Time  // publish time of a message of burst 1
	to   time.Time  // publish time of a message of burst 3
}

const replayTopic = "public/default/replay-src"

func newReplayFixture(t *testing.T) *replayFixture {
	s := newStandalone(t)
	s.start()
	c := s.client()
	ctx := testContext(t, 60*time.Second)
	if err := c.Admin().CreateTopic(ctx, replayTopic, 3); err != nil {
		t.Fatalf("creating %s with 3 partitions: %v", replayTopic, err)
	}
	f := &replayFixture{s: s, c: c, src: replayTopic}
	p, err := c.NewProducer(ctx, replayTopic, client.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var lastAck time.Time
	n := 0
	for burst := range 3 {
		if burst > 0 {
			// A pause: wait until the clock moved well past the last receipt.
			waitFor(t, 5*time.Second, "the clock to move on", func() bool { return time.Since(lastAck) > 30*time.Millisecond })
		}
		for i := range 40 {
			msg := &client.ProducerMessage{Payload: replayPayload(burst, i)}
			if i%3 != 0 {
				msg.Key = fmt.Sprintf("k%d", i%7)
			}
			if i%4 == 0 {
				msg.Properties = map[string]string{"burst": fmt.Sprint(burst), "i": fmt.Sprint(i)}
			}
			if i%5 == 0 {
				msg.EventTime = time.Unix(1_700_000_000+int64(n), int64(i)*1000).UTC()
			}
			if _, err := p.Send(ctx, msg); err != nil {
				t.Fatal(err)
			}
			n++
		}
		lastAck = time.Now()
	}
	f.all = readAll(t, c, replayTopic, n)
	byTime := slices.Clone(f.all)
	slices.SortStableFunc(byTime, func(a, b replayed) int { return a.publish.Compare(b.publish) })
	// Boundaries on messages' own publish times: the first bound is
	// inclusive, the second exclusive.
	f.from, f.to = byTime[25].publish, byTime[n-30].publish
	return f
}

// replayPayload is unique per message; one in six is not UTF-8.
func replayPayload(burst, i int) []byte {
	if i%6 == 5 {
		return []byte{0xff, 0xfe, byte(burst), byte(i), 0x00, 0x80}
	}
	return []byte(fmt.Sprintf("burst-%d message-%d", burst, i))
}

// readAll reads the n messages of topicName with a reader from the earliest.
func readAll(t *testing.T, c *client.Client, topicName string, n int) []replayed {
	t.Helper()
	ctx := testContext(t, 60*time.Second)
	r, err := c.NewReader(ctx, topicName)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []replayed
	for len(out) < n {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("read %d of %d messages of %s: %v", len(out), n, topicName, err)
		}
		out = append(out, replayed{topic: m.Topic, id: m.ID.String(), key: m.Key, payload: m.Payload,
			publish: m.PublishTime, eventTime: m.EventTime, props: m.Properties})
	}
	return out
}

// want returns the messages published in [from, to).
func (f *replayFixture) want() map[string]replayed {
	out := map[string]replayed{}
	for _, m := range f.all {
		if !m.publish.Before(f.from) && m.publish.Before(f.to) {
			out[m.ident()] = m
		}
	}
	return out
}

// replayArgs are the arguments of a replay of the fixture's window.
func (f *replayFixture) replayArgs(extra ...string) []string {
	return append([]string{"replay", "--url", f.s.url(), "--topic", f.src,
		"--from", f.from.UTC().Format(time.RFC3339Nano), "--to", f.to.UTC().Format(time.RFC3339Nano)}, extra...)
}

// strata runs the strata binary and returns stdout, stderr and exit code.
func strata(t *testing.T, args ...string) ([]byte, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, strataBin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("running strata %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.Bytes(), errOut.String(), code
}

// checkExact fails unless got is exactly want (same messages, payloads,
// keys) and, when ordered, in per-partition id order.
func checkExact(t *testing.T, format string, got []replayed, want map[string]replayed) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the window holds no message: the fixture is wrong")
	}
	seen := map[string]bool{}
	for _, g := range got {
		w, ok := want[g.ident()]
		switch {
		case !ok:
			t.Errorf("%s: %s (published %v) is outside the window", format, g.ident(), g.publish)
		case seen[g.ident()]:
			t.Errorf("%s: %s twice", format, g.ident())
		case !bytes.Equal(g.payload, w.payload) || g.key != w.key:
			t.Errorf("%s: %s has payload %q key %q, want %q %q", format, g.ident(), g.payload, g.key, w.payload, w.key)
		}
		seen[g.ident()] = true
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("%s: %s is missing", format, id)
		}
	}
	last := map[string]client.MessageID{}
	for _, g := range got {
		id, err := client.ParseMessageID(g.id)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[g.topic]; ok && !prev.Less(id) {
			t.Errorf("%s: %s after %v: out of partition order", format, g.ident(), prev)
		}
		last[g.topic] = id
	}
}

func TestReplayWindowIsExactInEveryFormat(t *testing.T) {
	f := newReplayFixture(t)
	want := f.want()
	dir := t.TempDir()

	ctx := testContext(t, 30*time.Second)
	durable, err := f.c.Subscribe(ctx, f.src, "keep", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	durable.Close()
	before := subscriptionState(t, f.c, "keep")

	t.Run("jsonl", func(t *testing.T) {
		out, stderr, code := strata(t, f.replayArgs()...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		got := parseJSONL(t, out)
		checkExact(t, "jsonl", got, want)
		for i := 1; i < len(got); i++ {
			if got[i].publish.Before(got[i-1].publish) {
				t.Fatalf("jsonl line %d published before line %d: not merged by publish time", i, i-1)
			}
		}
		for _, g := range got {
			w := want[g.ident()]
			if !g.eventTime.Equal(w.eventTime) || !maps.Equal(g.props, w.props) {
				t.Fatalf("jsonl %s: event time %v props %v, want %v %v", g.ident(), g.eventTime, g.props, w.eventTime, w.props)
			}
		}
	})
	t.Run("arrow", func(t *testing.T) {
		path := filepath.Join(dir, "w.arrow")
		if _, stderr, code := strata(t, f.replayArgs("--output", "arrow", "--out", path)...); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		checkExact(t, "arrow", readArrowFile(t, path), want)
	})
	t.Run("parquet", func(t *testing.T) {
		path := filepath.Join(dir, "w.parquet")
		if _, stderr, code := strata(t, f.replayArgs("--output", "parquet", "--out", path)...); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		checkExact(t, "parquet", readParquetFile(t, path), want)
	})
	t.Run("open end", func(t *testing.T) {
		out, stderr, code := strata(t, "replay", "--url", f.s.url(), "--topic", f.src, "--from", f.from.UTC().Format(time.RFC3339Nano))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		tail := map[string]replayed{}
		for _, m := range f.all {
			if !m.publish.Before(f.from) {
				tail[m.ident()] = m
			}
		}
		checkExact(t, "jsonl to the end", parseJSONL(t, out), tail)
	})
	t.Run("open end on a live topic", func(t *testing.T) { replayLiveTopic(t, f) })
	t.Run("unknown topic", func(t *testing.T) {
		_, stderr, code := strata(t, "replay", "--url", f.s.url(), "--topic", "no-such-topic", "--from", "-1h")
		if code != 2 || !strings.Contains(stderr, "TOPIC_NOT_FOUND") {
			t.Fatalf("exit %d, stderr %q: want 2 and TOPIC_NOT_FOUND", code, stderr)
		}
	})
	if after := subscriptionState(t, f.c, "keep"); after != before {
		t.Fatalf("replay moved subscription keep: %s, then %s", before, after)
	}
}

// replayLiveTopic checks that a replay without --to of a topic a producer
// keeps writing to ends, with a gapless prefix of the topic: the end is the
// last entry when the replay started.
func replayLiveTopic(t *testing.T, f *replayFixture) {
	const live = "public/default/replay-live"
	ctx, cancel := context.WithCancel(testContext(t, 60*time.Second))
	p, err := f.c.NewProducer(ctx, live, client.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	acked := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		defer p.Close()
		for i := 0; ; i++ {
			if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte(fmt.Sprintf("live-%d", i))}); err != nil {
				done <- err
				return
			}
			select {
			case acked <- i:
			default:
			}
		}
	}()
	var stopErr error
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			stopErr = err
		}
	})
	defer stop()
	for last := 0; last < 50; {
		select {
		case last = <-acked:
		case err := <-done:
			t.Fatalf("producer: %v", err)
		}
	}
	out, stderr, code := strata(t, "replay", "--url", f.s.url(), "--topic", live, "--from", "-1h")
	if stop(); stopErr != nil {
		t.Fatalf("producer: %v", stopErr)
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := parseJSONL(t, out)
	if len(got) < 50 {
		t.Fatalf("replayed %d messages, want at least the 50 acknowledged before it started", len(got))
	}
	for i, g := range got {
		if want := fmt.Sprintf("live-%d", i); string(g.payload) != want {
			t.Fatalf("message %d is %q, want %q: not a gapless prefix", i, g.payload, want)
		}
	}
}

// subscriptionState renders the backlog and position of subscription on
// every partition of the replay topic.
func subscriptionState(t *testing.T, c *client.Client, sub string) string {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	names, err := c.Admin().PartitionNames(ctx, replayTopic)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range names {
		st, err := c.Admin().TopicStats(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range st.Subscriptions {
			if s.Name == sub {
				found = true
				fmt.Fprintf(&b, "%s:%d@%v ", n, s.Backlog, s.MarkDelete)
			}
		}
		if !found {
			t.Fatalf("subscription %s missing on %s", sub, n)
		}
	}
	return b.String()
}

func parseJSONL(t *testing.T, out []byte) []replayed {
	t.Helper()
	var got []replayed
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var j client.JSONMessage
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		p, err := j.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := time.Parse(time.RFC3339Nano, j.PublishTime)
		if err != nil {
			t.Fatal(err)
		}
		r := replayed{topic: j.Topic, id: j.ID, key: j.Key, payload: p, publish: pub, props: j.Properties}
		if j.EventTime != "" {
			if r.eventTime, err = time.Parse(time.RFC3339Nano, j.EventTime); err != nil {
				t.Fatal(err)
			}
		}
		got = append(got, r)
	}
	return got
}

func readArrowFile(t *testing.T, path string) []replayed {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r, err := ipc.NewFileReader(fh, ipc.WithAllocator(memory.NewGoAllocator()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkSchema(t, r.Schema())
	var got []replayed
	for i := range r.NumRecords() {
		rec, err := r.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rowsOf(rec)...)
	}
	return got
}

func readParquetFile(t *testing.T, path string) []replayed {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), fh, nil, pqarrow.ArrowReadProperties{}, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	checkSchema(t, tbl.Schema())
	tr := array.NewTableReader(tbl, 1024)
	defer tr.Release()
	var got []replayed
	for tr.Next() {
		got = append(got, rowsOf(tr.Record())...)
	}
	return got
}

// checkSchema fails unless s has the documented columns, in order.
func checkSchema(t *testing.T, s *arrow.Schema) {
	t.Helper()
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.Name)
	}
	want := []string{"id", "ledger", "entry", "batch_index", "topic", "key", "publish_time", "event_time",
		"producer", "sequence_id", "properties", "payload"}
	if !slices.Equal(names, want) {
		t.Fatalf("columns %v, want %v", names, want)
	}
	if pt, ok := s.Field(6).Type.(*arrow.TimestampType); !ok || pt.TimeZone != "UTC" {
		t.Fatalf("publish_time is %v, want a UTC timestamp", s.Field(6).Type)
	}
}

// rowsOf reads the rows of a record of the replay schema.
func rowsOf(rec arrow.Record) []replayed {
	ids := rec.Column(0).(*array.String)
	ledgers := rec.Column(1).(*array.Uint64)
	entries := rec.Column(2).(*array.Int64)
	batches := rec.Column(3).(*array.Int32)
	topics := rec.Column(4).(*array.String)
	keys := rec.Column(5).(*array.String)
	pubs := rec.Column(6).(*array.Timestamp)
	unit := rec.Schema().Field(6).Type.(*arrow.TimestampType).Unit
	payloads := rec.Column(11).(*array.Binary)
	var out []replayed
	for i := range int(rec.NumRows()) {
		id := ids.Value(i)
		if fmt.Sprintf("%d:%d:%d", ledgers.Value(i), entries.Value(i), batches.Value(i)) != id {
			id = "mismatched columns " + id
		}
		out = append(out, replayed{topic: topics.Value(i), id: id, key: keys.Value(i),
			payload: bytes.Clone(payloads.Value(i)), publish: pubs.Value(i).ToTime(unit)})
	}
	return out
}

func TestReplayIntoAnotherTopicRepublishesExactlyTheRange(t *testing.T) {
	f := newReplayFixture(t)
	want := f.want()
	const dst = "public/default/replay-dst"
	ctx := testContext(t, 60*time.Second)
	if err := f.c.Admin().CreateTopic(ctx, dst, 0); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := strata(t, f.replayArgs("--into", dst, "--rate", "2000/s")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	st, err := f.c.Admin().TopicStats(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.MessagesIn != uint64(len(want)) {
		t.Fatalf("%s received %d messages, want %d", dst, st.MessagesIn, len(want))
	}
	byPayload := map[string]replayed{}
	for _, w := range want {
		byPayload[string(w.payload)] = w
	}
	for _, g := range readAll(t, f.c, dst, len(want)) {
		w, ok := byPayload[string(g.payload)]
		if !ok {
			t.Fatalf("%s got %q, not in the range (or twice)", dst, g.payload)
		}
		delete(byPayload, string(g.payload))
		if g.key != w.key || !g.eventTime.Equal(w.eventTime) || !maps.Equal(g.props, w.props) {
			t.Fatalf("%q republished with key %q event time %v props %v, want %q %v %v",
				g.payload, g.key, g.eventTime, g.props, w.key, w.eventTime, w.props)
		}
	}
	if len(byPayload) != 0 {
		t.Fatalf("%d messages of the range missing from %s", len(byPayload), dst)
	}

	t.Run("a target refusing the messages exits 1", func(t *testing.T) {
		pol := client.NamespacePolicy{Retention: client.Forever, MaxMessageBytes: 4}
		if err := f.c.Admin().SetNamespacePolicy(ctx, "public/tiny", pol); err != nil {
			t.Fatal(err)
		}
		if err := f.c.Admin().CreateTopic(ctx, "public/tiny/dst", 0); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := strata(t, f.replayArgs("--into", "public/tiny/dst")...)
		if code != 1 || !strings.Contains(stderr, "MESSAGE_TOO_LARGE") {
			t.Fatalf("exit %d, stderr %q; want 1 and MESSAGE_TOO_LARGE", code, stderr)
		}
	})
}

func TestReplayRefusesBadInputWithExitCode2(t *testing.T) {
	const url = "strata://127.0.0.1:1" // nothing listens: bad input fails before connecting
	cases := []struct {
		name string
		args []string
		msg  string
	}{
		{"to before from", []string{"--topic", "t", "--from", "-1h", "--to", "-2h"}, "must be after --from"},
		{"to equal to from", []string{"--topic", "t", "--from", "2026-01-02T00:00:00Z", "--to", "2026-01-02T00:00:00Z"}, "must be after --from"},
		{"invalid from", []string{"--topic", "t", "--from", "yesterday"}, "--from"},
		{"invalid to", []string{"--topic", "t", "--from", "-1h", "--to", "2026-13-01"}, "--to"},
		{"invalid topic", []string{"--topic", "a/b/c/d", "--from", "-1h"}, "INVALID_TOPIC_NAME"},
		{"unknown format", []string{"--topic", "t", "--from", "-1h", "--output", "csv"}, "--output"},
		{"negative rate", []string{"--topic", "t", "--from", "-1h", "--into", "u", "--rate", "-5"}, "--rate"},
		{"into itself", []string{"--topic", "t", "--from", "-1h", "--into", "public/default/t"}, "--into"},
		{"missing from", []string{"--topic", "t", "--to", "now"}, "INVALID_ARGUMENT: --topic and --from are required"},
		{"missing topic", []string{"--from", "-1h"}, "INVALID_ARGUMENT: --topic and --from are required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := strata(t, append([]string{"replay", "--url", url}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.msg) {
				t.Fatalf("exit %d, stderr %q: want exit 2 naming %q", code, stderr, tc.msg)
			}
		})
	}
}

// needle is message i's payload in the tests that damage one message's
// bytes where they are stored, found by its "needle-NNNN-" prefix.
func needle(i int) []byte { return fmt.Appendf(nil, "needle-%04d-%s", i, strings.Repeat("x", 200)) }

// flipInFiles flips one byte of needle's first occurrence in the files
// under dir (the standalone stopped), and reports whether it found one.
func flipInFiles(t *testing.T, dir string, needle []byte) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if i := bytes.Index(b, needle); i >= 0 {
			b[i+len(needle)/2] ^= 0xff
			found = true
			return os.WriteFile(path, b, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestReplayOfARangeWithAnUnreadableEntryFailsAndWritesNothing: a replay
// whose range holds an entry no bookie can serve (a flipped byte in the
// journal) exits with an error and leaves no output file. It used to take
// the silence after the last readable message for the end, because the
// reader had been placed by time, and exit 0 with part of the range.
func TestReplayOfARangeWithAnUnreadableEntryFailsAndWritesNothing(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	const topic = "damaged"
	send := func(first, n int) { sendPayloads(t, ctx, c, topic, n, func(i int) []byte { return needle(first + i) }) }
	send(0, 10)
	// The next messages go to a new ledger, so that the damaged one is
	// closed: the topic's load reads only its newest ledger.
	if err := c.Admin().UnloadTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	send(10, 5)
	s.kill()
	if !flipInFiles(t, s.dir, []byte("needle-0004-")) {
		t.Fatal("message 4's bytes are not in any file of the data directory")
	}
	s.start()
	out := filepath.Join(t.TempDir(), "out.jsonl")
	_, stderr, err := run(t, "", "replay", "--url", s.url(), "--topic", topic, "--from", "-1h", "--out", out, "--idle-timeout", "3s")
	if err == nil {
		t.Fatalf("replay over an unreadable entry succeeded (%s)", stderr)
	}
	if _, serr := os.Stat(out); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("the failed replay left %s (%v)", out, serr)
	}
}

// TestATopicWhoseNewestLedgerHasADamagedEntryStillLoads: an entry damaged
// on every copy (a flipped byte in the standalone's one journal) in the
// ledger a restart recovers no longer keeps the whole topic from loading:
// its statistics answer, producers publish, and a reader gets the entries
// before the damaged one. (The recovery read every entry for
// deduplication and failed the load on the first it could not read.)
func TestATopicWhoseNewestLedgerHasADamagedEntryStillLoads(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	const topic = "damaged-newest"
	sendPayloads(t, ctx, c, topic, 10, needle)
	s.kill()
	if !flipInFiles(t, s.dir, []byte("needle-0004-")) {
		t.Fatal("message 4's bytes are not in any file of the data directory")
	}
	s.start()
	c = s.client()
	var statsErr error
	waitFor(t, time.Minute, "the topic's statistics (once the dead session's lease ends)", func() bool {
		_, statsErr = c.Admin().TopicStats(ctx, topic)
		return statsErr == nil || !errcode.IsRetriable(statsErr)
	})
	if statsErr != nil {
		t.Fatalf("stats of the topic: %v", statsErr)
	}
	p, err := c.NewProducer(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("after")}); err != nil {
		t.Fatalf("publish after the restart: %v", err)
	}
	r, err := c.NewReader(ctx, topic, client.ReaderStartEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 4 {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		m, err := r.Next(rctx)
		cancel()
		if err != nil || !strings.HasPrefix(string(m.Payload), fmt.Sprintf("needle-%04d-", i)) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

// A replay reads offloaded ledgers deleted from the bookie, the ledgers
// the bookie still holds and the open one as one log: a window that
// starts in one tier and ends in the other, a window whose bounds are the
// first messages of two ledgers, and an open end each give exactly their
// messages, once each, in order.
func TestReplayAcrossOffloadedAndBookieLedgersIsExact(t *testing.T) {
	s := newStandalone(t)
	s.start()
	c := s.client()
	ctx := testContext(t, 60*time.Second)
	const tiered = "public/default/replay-tiered"
	pol, err := c.Admin().GetNamespacePolicy(ctx, "public/default")
	if err != nil {
		t.Fatal(err)
	}
	pol.OffloadDeletionLag, pol.OffloadAge, pol.OffloadThresholdBytes = 0, -1, -1
	if err := c.Admin().SetNamespacePolicy(ctx, "public/default", pol); err != nil {
		t.Fatal(err)
	}
	const perLedger = 15
	send := func(burst int) {
		p, err := c.NewProducer(ctx, tiered, client.ProducerLinger(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for i := range perLedger {
			if _, err := p.Send(ctx, &client.ProducerMessage{Key: fmt.Sprintf("k%d", i%4), Payload: []byte(fmt.Sprintf("ledger-%d message-%d", burst, i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Each burst in a ledger of its own: an unload closes the ledger.
	for burst := range 4 {
		if burst == 2 {
			// The first two ledgers go to the object store and leave the bookie.
			if n, err := c.Admin().TriggerOffload(ctx, tiered); err != nil || n != 2 {
				t.Fatalf("offload: %d ledgers, %v; want 2", n, err)
			}
		}
		send(burst)
		if burst < 3 {
			if err := c.Admin().UnloadTopic(ctx, tiered); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := c.Admin().TopicStats(ctx, tiered)
	if err != nil {
		t.Fatal(err)
	}
	var offloaded []uint64
	for _, l := range st.Ledgers {
		if l.Offloaded {
			offloaded = append(offloaded, l.Ledger)
		}
	}
	if len(offloaded) != 2 {
		t.Fatalf("offloaded ledgers %v, want the first two of %+v", offloaded, st.Ledgers)
	}
	// The pass deleted them before it answered; its log lines reach us a
	// little later.
	waitFor(t, 10*time.Second, "both offloaded ledgers deleted from the bookie", func() bool {
		s.logMu.Lock()
		defer s.logMu.Unlock()
		return strings.Count(s.log.String(), "offloaded ledger deleted from bookies") == 2
	})
	all := readAll(t, c, tiered, 4*perLedger)
	for i, m := range all {
		if want := fmt.Sprintf("ledger-%d message-%d", i/perLedger, i%perLedger); string(m.payload) != want {
			t.Fatalf("reader: message %d is %q, want %q", i, m.payload, want)
		}
	}
	window := func(from, to int) map[string]replayed {
		out := map[string]replayed{}
		for _, m := range all[from:to] {
			out[m.ident()] = m
		}
		return out
	}
	at := func(i int) string { return all[i].publish.UTC().Format(time.RFC3339Nano) }
	for _, w := range []struct {
		name     string
		from, to int // message indexes; to == len(all): no --to
	}{
		{"offloaded into the open ledger", 7, 52},
		{"exactly the second offloaded ledger", perLedger, 2 * perLedger},
		{"exactly the first ledger on the bookie", 2 * perLedger, 3 * perLedger},
		{"from an offloaded ledger to the end", perLedger + 1, len(all)},
	} {
		args := []string{"replay", "--url", s.url(), "--topic", tiered, "--from", at(w.from)}
		if w.to < len(all) {
			args = append(args, "--to", at(w.to))
		}
		out, stderr, code := strata(t, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", w.name, code, stderr)
		}
		got := parseJSONL(t, out)
		checkExact(t, w.name, got, window(w.from, w.to))
		if len(got) != w.to-w.from {
			t.Fatalf("%s: %d messages, want %d", w.name, len(got), w.to-w.from)
		}
	}
}
