package client_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

func TestJSONLinesWriteUTF8PayloadAsStringAndBinaryAsBase64(t *testing.T) {
	pub := time.Date(2026, 1, 2, 3, 4, 5, 120, time.FixedZone("x", 3600))
	msgs := []*client.Message{
		{ID: client.MessageID{Ledger: 7, Entry: 12, Batch: 3}, Topic: "public/default/t", Key: "k", PublishTime: pub,
			Properties: map[string]string{"a": "b"}, Payload: []byte("héllo <world>")},
		{ID: client.MessageID{Ledger: 7, Entry: 13}, Topic: "public/default/t", PublishTime: pub, Payload: []byte{0xff, 0x00, 0xfe}},
	}
	var buf bytes.Buffer
	w := client.NewJSONLWriter(&buf)
	for _, m := range msgs {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["id"] != "7:12:3" || first["topic"] != "public/default/t" || first["key"] != "k" ||
		first["payload"] != "héllo <world>" || first["publish_time"] != "2026-01-02T02:04:05.000000120Z" {
		t.Fatalf("first line %s", lines[0])
	}
	if _, ok := first["payload_base64"]; ok {
		t.Fatal("UTF-8 payload also written as base64")
	}
	if props, _ := first["properties"].(map[string]any); props["a"] != "b" {
		t.Fatalf("properties %v", first["properties"])
	}
	var second client.JSONMessage
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if second.Payload != nil || second.PayloadBase64 == nil || *second.PayloadBase64 != "/wD+" {
		t.Fatalf("binary payload line %s", lines[1])
	}
	if !strings.Contains(lines[1], `"properties":{}`) {
		t.Fatalf("nil properties should be {}: %s", lines[1])
	}
	b, err := second.Bytes()
	if err != nil || !bytes.Equal(b, msgs[1].Payload) {
		t.Fatalf("payload round trip: %v %v", b, err)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
	}{
		{"2026-01-02T15:04:05Z", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		{"2026-01-02T15:04:05.5+01:00", time.Date(2026, 1, 2, 14, 4, 5, 5e8, time.UTC)},
		{"-2h", now.Add(-2 * time.Hour)},
		{"-30m", now.Add(-30 * time.Minute)},
		{"-1d12h", now.Add(-36 * time.Hour)},
		{"-1w", now.Add(-7 * 24 * time.Hour)},
		{"now", now},
		{"@1767225600000", time.UnixMilli(1767225600000)},
	}
	for _, c := range cases {
		got, err := client.ParseTime(c.in, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "-", "-2", "-2x", "yesterday", "2026-01-02", "@x", "-h"} {
		if _, err := client.ParseTime(bad, now); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("ParseTime(%q): %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	cases := map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1w2d": 9 * 24 * time.Hour, "90s": 90 * time.Second,
		"0": 0, "1h30m": 90 * time.Minute, "1.5d": 36 * time.Hour, "250ms": 250 * time.Millisecond}
	for in, want := range cases {
		if got, err := client.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1h", "d", "5", "5x", "1h-",
		"99999999999w", "15251w", "106751d106751d", "2562047h2562047h"} { // past the largest Duration
		if d, err := client.ParseDuration(bad); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("ParseDuration(%q) = %v, %v; want ErrInvalidArgument", bad, d, err)
		}
	}
}

// FuzzParseDuration: every input is refused with ErrInvalidArgument or
// gives a duration that is not negative (an overflow once gave one, and a
// relative time in the future).
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"7d", "1w2d", "1.5d", "250ms", "99999999999w", "106751d106751d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := client.ParseDuration(s)
		if err != nil {
			if !errors.Is(err, client.ErrInvalidArgument) {
				t.Fatalf("%q: untyped error %v", s, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("%q parsed to a negative duration %v", s, d)
		}
	})
}

func TestMessageIDStringAndParseRoundTrip(t *testing.T) {
	id := client.MessageID{Ledger: 42, Entry: 7, Batch: 3}
	if id.String() != "42:7:3" {
		t.Fatalf("String() = %q", id.String())
	}
	got, err := client.ParseMessageID(id.String())
	if err != nil || got != id {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if got, err := client.ParseMessageID("5:9"); err != nil || got != (client.MessageID{Ledger: 5, Entry: 9}) {
		t.Fatalf("ledger:entry form: %v %v", got, err)
	}
	for _, bad := range []string{"", "1", "1:2:3:4", "a:1:0", "1:x:0", "1:2:-1", "-1:2:0"} {
		if _, err := client.ParseMessageID(bad); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("ParseMessageID(%q): %v", bad, err)
		}
	}
}

func FuzzParseMessageID(f *testing.F) {
	for _, s := range []string{"1:2:3", "0:-1:0", "18446744073709551615:1:0", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := client.ParseMessageID(s)
		if err != nil {
			return
		}
		again, err := client.ParseMessageID(id.String())
		if err != nil || again != id {
			t.Fatalf("%q parsed to %v, which does not round-trip: %v %v", s, id, again, err)
		}
	})
}
