package client

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// chunkMsg is chunk i of n of message uuid (total bytes in all), at entry e.
func chunkMsg(uuid string, i, n, total int, payload string, e int64) *Message {
	return &Message{ID: MessageID{Ledger: 1, Entry: e}, Key: "k", Payload: []byte(payload), Properties: map[string]string{
		"user": "v", chunkUUIDProperty: uuid, chunkIndexProperty: fmt.Sprint(i),
		chunkCountProperty: fmt.Sprint(n), chunkBytesProperty: fmt.Sprint(total)}}
}

func ids(entries ...int64) []MessageID {
	out := make([]MessageID, len(entries))
	for i, e := range entries {
		out[i] = MessageID{Ledger: 1, Entry: e}
	}
	return out
}

func TestAssemblerPutsChunksTogetherAndIgnoresOnesMetAgain(t *testing.T) {
	var a chunkAssembler
	now := time.Now()
	for _, m := range []*Message{chunkMsg("u", 0, 3, 5, "ab", 10), chunkMsg("u", 1, 3, 5, "cd", 11), chunkMsg("u", 1, 3, 5, "cd", 11)} {
		if w, ack, nack := a.add(m, now, true); w != nil || ack != nil || nack != nil {
			t.Fatalf("before the last chunk: %v %v %v", w, ack, nack)
		}
	}
	w, ack, nack := a.add(chunkMsg("u", 2, 3, 5, "e", 13), now, true)
	if w == nil || string(w.Payload) != "abcde" || w.Key != "k" || w.ID != ids(10)[0] || ack != nil || nack != nil {
		t.Fatalf("whole: %+v %v %v", w, ack, nack)
	}
	if len(w.Properties) != 1 || w.Properties["user"] != "v" {
		t.Fatalf("properties %v: want the user's only", w.Properties)
	}
	if got := a.chunkIDs(w.ID, true); !slices.Equal(got, ids(10, 11, 13)) {
		t.Fatalf("chunk ids %v", got)
	}
	if got := a.chunkIDs(w.ID, false); !slices.Equal(got, ids(10)) {
		t.Fatalf("chunk ids after their ack %v, want the id alone", got)
	}
	plain := &Message{Properties: map[string]string{chunkUUIDProperty: "x", chunkIndexProperty: "one"}}
	if w, _, _ := a.add(plain, now, true); w != plain {
		t.Fatal("a message whose chunk properties do not parse was not handed out as it is")
	}
}

func TestAssemblerGivesBackGapsAndAcknowledgesWhatCanNeverBeWhole(t *testing.T) {
	var a chunkAssembler
	now := time.Now()
	a.add(chunkMsg("gap", 0, 3, 6, "ab", 1), now, true)
	if _, ack, nack := a.add(chunkMsg("gap", 2, 3, 6, "ef", 3), now, true); ack != nil || !slices.Equal(nack, ids(1, 3)) {
		t.Fatalf("a gap: ack %v nack %v, want both chunks given back", ack, nack)
	}
	if _, ack, nack := a.add(chunkMsg("orphan", 1, 2, 4, "cd", 5), now, true); !slices.Equal(ack, ids(5)) || nack != nil {
		t.Fatalf("a chunk without its first: ack %v nack %v", ack, nack)
	}
	a.add(chunkMsg("short", 0, 2, 9, "ab", 6), now, true)
	if w, ack, _ := a.add(chunkMsg("short", 1, 2, 9, "cd", 7), now, true); w != nil || !slices.Equal(ack, ids(6, 7)) {
		t.Fatalf("chunks short of their stated size: %v, ack %v", w, ack)
	}
	a.add(chunkMsg("stale", 0, 2, 4, "ab", 8), now, true)
	if _, ack, _ := a.add(chunkMsg("fresh", 0, 2, 4, "ab", 9), now.Add(expireIncompleteChunked), true); !slices.Equal(ack, ids(8)) {
		t.Fatalf("a message waiting past the expiry: ack %v", ack)
	}
	var b chunkAssembler
	for i := range maxPendingChunked {
		b.add(chunkMsg(fmt.Sprint(i), 0, 2, 4, "ab", int64(100+i)), now.Add(time.Duration(i)), true)
	}
	if _, _, nack := b.add(chunkMsg("one too many", 0, 2, 4, "ab", 1000), now.Add(time.Hour/1000), true); !slices.Equal(nack, ids(100)) {
		t.Fatalf("past the bound: nack %v, want the oldest given back", nack)
	}
}
