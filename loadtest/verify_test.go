package loadtest

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// feed sends seqs [0, n) from producer 0 partition 0 and acks them all.
func feed(t *testing.T, v *Verifier, n uint64) {
	t.Helper()
	for seq := range n {
		h := Header{Seq: seq}
		if err := v.Sent(h); err != nil {
			t.Fatal(err)
		}
		v.Acked(h)
	}
}

func receiveAll(v *Verifier, seqs ...uint64) []Receipt {
	var out []Receipt
	for _, s := range seqs {
		out = append(out, v.Received(0, 0, Header{Seq: s}, ""))
	}
	return out
}

func newTestVerifier() *Verifier {
	v := NewVerifier(1)
	v.AddProducer(0, 0)
	v.AddSubscription(0, 0)
	return v
}

func TestVerifierReportsEachFault(t *testing.T) {
	cases := []struct {
		name     string
		received []uint64
		want     Verification
	}{
		{"all in order", []uint64{0, 1, 2, 3, 4}, Verification{Received: 5}},
		{"gap is lost", []uint64{0, 1, 3, 4}, Verification{Received: 4, Lost: 1}},
		{"duplicate", []uint64{0, 1, 1, 2, 3, 4}, Verification{Received: 5, Duplicates: 1}},
		{"reorder", []uint64{0, 2, 1, 3, 4}, Verification{Received: 5, OutOfOrder: 1}},
		{"late duplicate is not a reorder", []uint64{0, 1, 2, 3, 4, 1}, Verification{Received: 5, Duplicates: 1}},
		{"gap, duplicate and reorder", []uint64{0, 2, 2, 1, 4}, Verification{Received: 4, Lost: 1, Duplicates: 1, OutOfOrder: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newTestVerifier()
			feed(t, v, 5)
			receiveAll(v, c.received...)
			got := v.Report()
			c.want.Published, c.want.Acked = 5, 5
			if got != c.want {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
			if got.OK() != (c.want.Lost == 0 && c.want.OutOfOrder == 0) {
				t.Fatalf("OK() = %v for %+v", got.OK(), got)
			}
		})
	}
}

func TestVerifierClassifiesEachReceipt(t *testing.T) {
	v := newTestVerifier()
	feed(t, v, 4)
	got := receiveAll(v, 0, 2, 1, 2, 9)
	want := []Receipt{InOrder, InOrder, OutOfOrder, Duplicate, Unexpected}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("receipt %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func TestVerifierDoesNotCountUnacknowledgedSendsAsLost(t *testing.T) {
	v := newTestVerifier()
	for seq := range uint64(4) {
		if err := v.Sent(Header{Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	v.Acked(Header{Seq: 0})
	v.Failed(Header{Seq: 1})
	// 2 and 3 never answered; 3 arrives anyway.
	receiveAll(v, 0, 3)
	got := v.Report()
	want := Verification{Published: 4, Acked: 1, Failed: 1, Unacked: 3, Received: 2, ReceivedUnacked: 1}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if !got.OK() {
		t.Fatal("unacknowledged sends made the run fail")
	}
}

func TestVerifierChecksEverySubscriptionSeparately(t *testing.T) {
	v := newTestVerifier()
	v.AddSubscription(1, 0)
	feed(t, v, 3)
	receiveAll(v, 0, 1, 2) // subscription 0 gets everything
	v.Received(1, 1, Header{Seq: 0}, "")
	got := v.Report()
	if got.Lost != 2 || got.Duplicates != 0 {
		t.Fatalf("subscription 1 missed 2 messages; got %+v", got)
	}
}

func TestVerifierTracksOrderPerConsumerAndPartition(t *testing.T) {
	v := NewVerifier(2)
	v.AddProducer(7, 0)
	v.AddSubscription(0, 0)
	for seq := range uint64(3) {
		for p := range uint32(2) {
			h := Header{Producer: 7, Partition: p, Seq: seq}
			if err := v.Sent(h); err != nil {
				t.Fatal(err)
			}
			v.Acked(h)
		}
	}
	// Partition 1 behind partition 0 is fine; so is a shared subscription's
	// second consumer starting lower than the first.
	order := []struct {
		consumer int
		part     uint32
		seq      uint64
	}{{0, 0, 0}, {0, 0, 1}, {0, 1, 0}, {0, 0, 2}, {1, 1, 1}, {0, 1, 2}}
	for _, o := range order {
		if r := v.Received(0, o.consumer, Header{Producer: 7, Partition: o.part, Seq: o.seq}, ""); r != InOrder {
			t.Fatalf("%+v classified %v", o, r)
		}
	}
	if got := v.Report(); !got.OK() || got.Received != 6 {
		t.Fatalf("got %+v", got)
	}
}

func TestVerifierRejectsSequenceGapsFromTheProducer(t *testing.T) {
	v := newTestVerifier()
	if err := v.Sent(Header{Seq: 1}); err == nil {
		t.Fatal("a send skipping seq 0 was accepted")
	}
	if err := v.Sent(Header{Producer: 3}); err == nil {
		t.Fatal("a send from an undeclared producer was accepted")
	}
}

func TestVerifierCountsForeignAndGarbledMessagesAsUnexpected(t *testing.T) {
	v := newTestVerifier()
	feed(t, v, 1)
	v.Received(0, 0, Header{Producer: 99}, "")
	v.Received(5, 0, Header{}, "")
	v.Garbled()
	if got := v.Report(); got.Unexpected != 3 || got.OK() {
		t.Fatalf("got %+v", got)
	}
}

func TestSeqSetCountsMembersMissingFromAnother(t *testing.T) {
	var a, b seqSet
	for _, s := range []uint64{0, 5, 63, 64, 200} {
		a.add(s)
	}
	b.add(5)
	b.add(64)
	if n := a.countNotIn(&b); n != 3 {
		t.Fatalf("countNotIn = %d, want 3", n)
	}
	if n := a.countNotIn(nil); n != 5 {
		t.Fatalf("countNotIn(nil) = %d, want 5", n)
	}
	if a.add(63) {
		t.Fatal("re-adding a member reported it new")
	}
}

func TestVerifierUnsentReusesTheSequenceNumber(t *testing.T) {
	v := newTestVerifier()
	feed(t, v, 2)
	if err := v.Sent(Header{Seq: 2}); err != nil {
		t.Fatal(err)
	}
	if err := v.Unsent(Header{Seq: 1}); err == nil {
		t.Fatal("took back a send that is not the last")
	}
	if err := v.Unsent(Header{Seq: 2}); err != nil {
		t.Fatal(err)
	}
	if err := v.Sent(Header{Seq: 2}); err != nil {
		t.Fatalf("seq 2 not reusable after Unsent: %v", err)
	}
	if got := v.Report(); got.Published != 3 {
		t.Fatalf("published %d, want 3", got.Published)
	}
}

// With OrderPerKey, a consumer may get a key's first receipts below what
// it got of other keys (a key_shared consumer taking over keys), but not
// below what it got of the same key.
func TestVerifierChecksOrderPerKeyWhenAsked(t *testing.T) {
	for _, perKey := range []bool{false, true} {
		v := newTestVerifier()
		if perKey {
			v.OrderPerKey()
		}
		for seq := range uint64(4) {
			if err := v.Sent(Header{Seq: seq}); err != nil {
				t.Fatal(err)
			}
		}
		v.Received(0, 0, Header{Seq: 2}, "a")
		r := v.Received(0, 0, Header{Seq: 1}, "b")
		if want := map[bool]Receipt{false: OutOfOrder, true: InOrder}[perKey]; r != want {
			t.Fatalf("perKey=%v: seq 1 of another key after seq 2 classified %v, want %v", perKey, r, want)
		}
		if r := v.Received(0, 0, Header{Seq: 0}, "a"); r != OutOfOrder {
			t.Fatalf("perKey=%v: seq 0 of key a after seq 2 of key a classified %v", perKey, r)
		}
	}
}

// The running count behind Missing agrees with the recount behind the
// verdict whatever comes first: a message's acknowledgement or its
// receipt, and whatever arrives twice, unasked for or never.
func TestVerifierMissingAgreesWithTheRecount(t *testing.T) {
	v := NewVerifier(2)
	v.AddProducer(0, 0)
	v.AddProducer(1, 1) // a topic nobody reads
	v.AddSubscription(0, 0)
	v.AddSubscription(1, 0)
	rng := rand.New(rand.NewPCG(3, 4))
	var sent []Header
	for seq := range uint64(200) {
		for p := range uint32(2) {
			for _, prod := range []uint32{0, 1} {
				h := Header{Producer: prod, Partition: p, Seq: seq}
				if err := v.Sent(h); err != nil {
					t.Fatal(err)
				}
				sent = append(sent, h)
			}
		}
	}
	check := func(step string) {
		t.Helper()
		got, want := v.Missing(), v.Report().Lost
		if got != want {
			t.Fatalf("%s: Missing() = %d, recount %d", step, got, want)
		}
		if snap := v.Snapshot().Lost; snap != want {
			t.Fatalf("%s: Snapshot().Lost = %d, recount %d", step, snap, want)
		}
	}
	for i, h := range sent {
		// Acks and receipts in every order, some twice, some never.
		switch rng.IntN(4) {
		case 0:
			v.Acked(h)
			v.Received(0, 0, h, "")
		case 1:
			v.Received(1, 1, h, "")
			v.Acked(h)
			v.Acked(h)
			v.Received(0, 0, h, "")
		case 2:
			v.Acked(h)
		case 3:
			v.Failed(h)
			v.Received(0, 0, h, "")
			v.Received(0, 0, h, "")
		}
		if i%97 == 0 {
			check(fmt.Sprintf("after %d messages", i))
		}
	}
	v.Received(0, 0, Header{Producer: 9}, "") // unexpected
	check("at the end")
	if v.Missing() == 0 {
		t.Fatal("the test left nothing missing: it checks too little")
	}
}
