package main

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestTableViewHoldsTheLatestValueOfEachKeyOnARealStandalone: on a real
// standalone, a table view of a partitioned topic holds each key's latest
// message once it opens (tombstones remove keys, keyless messages are
// skipped) and follows later messages, which its listener sees too.
func TestTableViewHoldsTheLatestValueOfEachKeyOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client()
	if err := c.Admin().CreateTopic(ctx, "prices", 2); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer(ctx, "prices")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	send := func(key, value string) {
		t.Helper()
		if _, err := p.Send(ctx, &client.ProducerMessage{Key: key, Payload: []byte(value)}); err != nil {
			t.Fatal(err)
		}
	}
	send("apple", "1.00")
	send("pear", "2.00")
	send("apple", "1.10")
	send("", "no key")
	send("pear", "") // a tombstone
	send("plum", "3.00")

	tv, err := c.NewTableView(ctx, "prices")
	if err != nil {
		t.Fatal(err)
	}
	defer tv.Close()
	if got := tv.Keys(); !slices.Equal(got, []string{"apple", "plum"}) {
		t.Fatalf("keys %v, want apple plum", got)
	}
	if m := tv.Get("apple"); m == nil || string(m.Payload) != "1.10" {
		t.Fatalf("apple: %v, want 1.10", m)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	tv.ForEachAndListen(func(key string, m *client.Message) {
		mu.Lock()
		defer mu.Unlock()
		if m == nil {
			seen[key] = "<removed>"
			return
		}
		seen[key] = string(m.Payload)
	})
	send("apple", "1.20")
	send("plum", "")
	send("kiwi", "0.50")
	waitFor(t, 30*time.Second, "the view and its listener following the topic", func() bool {
		mu.Lock()
		defer mu.Unlock()
		m := tv.Get("apple")
		return m != nil && string(m.Payload) == "1.20" && tv.Get("plum") == nil && tv.Get("kiwi") != nil &&
			seen["apple"] == "1.20" && seen["plum"] == "<removed>" && seen["kiwi"] == "0.50"
	})
	if tv.Size() != 2 || tv.Err() != nil {
		t.Fatalf("size %d, err %v", tv.Size(), tv.Err())
	}
	if err := tv.Close(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	<-short.Done()
	if _, err := c.NewTableView(short, "prices"); err == nil {
		t.Fatal("a table view opened with an expired context")
	}
}
