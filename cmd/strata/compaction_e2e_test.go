package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// stampInterceptor stamps each message it sees sent with a property.
type stampInterceptor struct{ acked atomic.Int64 }

func (i *stampInterceptor) BeforeSend(m *client.ProducerMessage) {
	m.Properties = map[string]string{"stamp": "v1"}
}

func (i *stampInterceptor) OnSendAcknowledgement(_ *client.ProducerMessage, _ client.MessageID, err error) {
	if err == nil {
		i.acked.Add(1)
	}
}

// TestCompactedReadGetsTheLatestValueOfEachKeyThenWhatFollowsOnARealStandalone:
// on a real standalone, `strata topics compact` keeps the latest message of
// each key of every partition; a reader with ReaderReadCompacted gets those,
// with the ids and properties they were published with (a producer
// interceptor's stamp), then the messages published after the compaction;
// a table view opens on the compaction too.
func TestCompactedReadGetsTheLatestValueOfEachKeyThenWhatFollowsOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	ctx := testContext(t, time.Minute)
	c := s.client()
	cli("", "topics", "create", "stock", "--partitions", "2")
	var stamp stampInterceptor
	p, err := c.NewProducer(ctx, "stock", client.ProducerInterceptors(&stamp))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	latest := map[string]client.MessageID{}
	send := func(key, value string) {
		t.Helper()
		id, err := p.Send(ctx, &client.ProducerMessage{Key: key, Payload: []byte(value)})
		if err != nil {
			t.Fatal(err)
		}
		latest[key] = id
	}
	for round := range 5 {
		for _, k := range []string{"a", "b", "c", "d"} {
			send(k, fmt.Sprintf("%s%d", k, round))
		}
	}
	send("d", "") // a tombstone
	delete(latest, "d")
	if stamp.acked.Load() != 21 {
		t.Fatalf("the producer interceptor saw %d acknowledgements, want 21", stamp.acked.Load())
	}
	out := cli("", "topics", "compact", "stock")
	if strings.Count(out, "messages kept") != 2 {
		t.Fatalf("compact printed:\n%s", out)
	}
	var kept uint64
	for _, part := range []string{"stock-partition-0", "stock-partition-1"} {
		st, err := c.Admin().TopicStats(ctx, part)
		if err != nil || st.CompactionHorizon == nil {
			t.Fatalf("stats of %s: %+v %v, want its compaction", part, st, err)
		}
		kept += st.CompactedMessages
	}
	if kept != 3 {
		t.Fatalf("the partitions' stats count %d compacted messages, want 3", kept)
	}

	r, err := c.NewReader(ctx, "stock", client.ReaderReadCompacted())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := map[string]string{}
	for range 3 {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.ID != latest[m.Key] || m.Properties["stamp"] != "v1" || len(m.Properties) != 1 {
			t.Fatalf("%s came with id %v and properties %v, published as %v with the stamp", m.Key, m.ID, m.Properties, latest[m.Key])
		}
		got[m.Key] = string(m.Payload)
	}
	if fmt.Sprint(got) != "map[a:a4 b:b4 c:c4]" {
		t.Fatalf("compacted read: %v", got)
	}
	send("e", "e0")
	if m, err := r.Next(ctx); err != nil || m.Key != "e" || string(m.Payload) != "e0" {
		t.Fatalf("after the compacted messages: %v %v, want e=e0", m, err)
	}
	if _, err := c.NewReader(ctx, "stock", client.ReaderReadCompacted(), client.ReaderStartLatest()); err == nil {
		t.Fatal("a compacted read from the latest message was accepted")
	}

	tv, err := c.NewTableView(ctx, "stock")
	if err != nil {
		t.Fatal(err)
	}
	defer tv.Close()
	if keys := tv.Keys(); fmt.Sprint(keys) != "[a b c e]" || string(tv.Get("a").Payload) != "a4" {
		t.Fatalf("table view: %v", keys)
	}

	// A durable consumer reading compacted: the latest of each key of every
	// partition, then e, which followed the compaction; acknowledging them
	// drains its backlog.
	out = cli("", "consume", "--topic", "stock", "--subscription", "durable", "--position", "earliest", "--read-compacted",
		"--count", "4", "--timeout", "20s", "--output", "jsonl")
	if n := strings.Count(out, "\n"); n != 4 || strings.Contains(out, `"a3"`) || !strings.Contains(out, `"a4"`) || !strings.Contains(out, `"e0"`) {
		t.Fatalf("consume --read-compacted printed %d lines:\n%s", n, out)
	}
	waitFor(t, 30*time.Second, "the durable compacted reader's backlog drained", func() bool {
		for _, part := range []string{"stock-partition-0", "stock-partition-1"} {
			st, err := c.Admin().TopicStats(ctx, part)
			if err != nil {
				return false
			}
			for _, sub := range st.Subscriptions {
				if sub.Name == "durable" && sub.Backlog != 0 {
					return false
				}
			}
		}
		return true
	})
	if _, err := c.Subscribe(ctx, "stock", "shared-compacted", client.ConsumerType(client.Shared), client.ConsumerReadCompacted()); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("a shared consumer reading compacted: %v, want ErrInvalidArgument", err)
	}
}

// TestTopicCompactsItselfPastItsThresholdOnARealStandalone: with a
// compaction threshold in a topic's policy, set from the command line, the
// topic compacts itself on a real standalone once that many bytes follow
// the last compaction, and again after more, while its only ledger never
// rolls (the bytes written to the horizon's own ledger after it count).
func TestTopicCompactsItselfPastItsThresholdOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.extraArgs = []string{"--retention-check-interval", "100ms"}
	s.start()
	cli := cliAt(t, s.url())
	ctx := testContext(t, time.Minute)
	admin := s.client().Admin()
	p, err := s.client().NewProducer(ctx, "levels")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var last client.MessageID
	produce := func(kvs ...string) {
		t.Helper()
		for _, kv := range kvs {
			k, v, _ := strings.Cut(kv, "=")
			if last, err = p.Send(ctx, &client.ProducerMessage{Key: k, Payload: []byte(v)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	compactedUpTo := func(last client.MessageID) {
		t.Helper()
		waitFor(t, 30*time.Second, "a compaction up to "+last.String(), func() bool {
			st, err := admin.TopicStats(ctx, "levels")
			return err == nil && st.CompactionHorizon != nil &&
				st.CompactionHorizon.Ledger == last.Ledger && st.CompactionHorizon.Entry == last.Entry
		})
	}

	produce("a=1")
	cli("", "topics", "set-policy", "levels", "--compaction-threshold", "1")
	produce("b=2", "a=3")
	compactedUpTo(last)
	if got := payloads(cli("", "read", "--topic", "levels", "--compacted", "--to-end", "--timeout", "20s")); !slices.Equal(got, []string{"2", "3"}) {
		t.Fatalf("read --compacted after the first compaction: %q", got)
	}
	produce("b=4")
	compactedUpTo(last)
	if got := payloads(cli("", "read", "--topic", "levels", "--compacted", "--to-end", "--timeout", "20s")); !slices.Equal(got, []string{"3", "4"}) {
		t.Fatalf("read --compacted after the second compaction: %q", got)
	}
	st, err := admin.TopicStats(ctx, "levels")
	if err != nil || len(st.Ledgers) != 1 {
		t.Fatalf("stats %+v %v: want the topic still on one ledger", st, err)
	}
}
