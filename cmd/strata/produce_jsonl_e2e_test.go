package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestJSONLinesFromConsumeProduceTheSameMessagesOnAnotherTopic: on a real
// standalone, what `consume --output jsonl` prints, fed to `produce
// --input jsonl`, makes the same messages on another topic: keys,
// properties, event times and payloads (binary ones too) kept; a
// malformed line stops the input with its number, and the lines before it
// are sent.
func TestJSONLinesFromConsumeProduceTheSameMessagesOnAnotherTopic(t *testing.T) {
	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	ctx := testContext(t, time.Minute)
	p, err := s.client().NewProducer(ctx, "source")
	if err != nil {
		t.Fatal(err)
	}
	event := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	sent := []*client.ProducerMessage{
		{Key: "a", Payload: []byte("text payload"), Properties: map[string]string{"origin": "web"}, EventTime: event},
		{Key: "b", Payload: []byte{0x00, 0xff, 0xfe, 'x'}},
		{Payload: []byte(`{"already":"json"}`), Properties: map[string]string{"p": "1", "q": "2"}},
	}
	for _, m := range sent {
		if _, err := p.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	lines := cli("", "consume", "--topic", "source", "--subscription", "copy", "--position", "earliest",
		"--count", "3", "--output", "jsonl", "--timeout", "20s")
	// A blank line (an editor's, say) carries no message.
	if out, errOut, err := run(t, lines+"\n", "produce", "--topic", "copy", "--input", "jsonl", "--property", "copied=yes", "--url", s.url()); err != nil ||
		!strings.Contains(errOut, "produced 3 of 3") {
		t.Fatalf("produce --input jsonl: %v\n%s%s", err, out, errOut)
	}
	copied := cli("", "consume", "--topic", "copy", "--subscription", "check", "--position", "earliest",
		"--count", "3", "--output", "jsonl", "--timeout", "20s")
	for i, line := range strings.Split(strings.TrimSpace(copied), "\n") {
		var j client.JSONMessage
		if err := json.Unmarshal([]byte(line), &j); err != nil {
			t.Fatal(err)
		}
		payload, err := j.Bytes()
		want := sent[i]
		wantProps := maps.Clone(want.Properties)
		if wantProps == nil {
			wantProps = map[string]string{}
		}
		wantProps["copied"] = "yes"
		if err != nil || j.Key != want.Key || !bytes.Equal(payload, want.Payload) || !maps.Equal(j.Properties, wantProps) {
			t.Fatalf("copy %d: %s, want key %q payload %q properties %v", i, line, want.Key, want.Payload, wantProps)
		}
		if !want.EventTime.IsZero() && j.EventTime != want.EventTime.Format(client.JSONTimeFormat) {
			t.Fatalf("copy %d: event time %q, want %v", i, j.EventTime, want.EventTime)
		}
	}

	_, errOut, err := run(t, `{"key":"k","payload":"fine"}`+"\n"+`{"key":`+"\n"+`{"payload":"never"}`+"\n",
		"produce", "--topic", "bad", "--input", "jsonl", "--url", s.url())
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(errOut, "produced 1 of 1") {
		t.Fatalf("a malformed second line: %v\n%s", err, errOut)
	}
	if _, _, err := run(t, "x\n", "produce", "--topic", "bad", "--input", "xml", "--url", s.url()); err == nil {
		t.Fatal("--input xml was accepted")
	}
}
