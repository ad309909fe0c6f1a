package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestCompactedReadGetsTheLatestValueOfEachKeyThenWhatFollowsOnARealStandalone:
// on a real standalone, `strata topics compact` keeps the latest message of
// each key of every partition; a reader with ReaderReadCompacted gets those,
// with the ids they were published with, then the messages published after
// the compaction; a table view opens on the compaction too.
func TestCompactedReadGetsTheLatestValueOfEachKeyThenWhatFollowsOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	ctx := testContext(t, time.Minute)
	c := s.client()
	cli("", "topics", "create", "stock", "--partitions", "2")
	p, err := c.NewProducer(ctx, "stock")
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
	out := cli("", "topics", "compact", "stock")
	if strings.Count(out, "messages kept") != 2 {
		t.Fatalf("compact printed:\n%s", out)
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
		if m.ID != latest[m.Key] {
			t.Fatalf("%s came with id %v, published as %v", m.Key, m.ID, latest[m.Key])
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
}
