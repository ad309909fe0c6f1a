package entry

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func sample() *Batch {
	return &Batch{
		ProducerName: "producer-1",
		PublishTime:  1_700_000_000_123_456_789,
		Messages: []Message{
			{SequenceID: 7, Key: "k1", Properties: map[string]string{"a": "1", "b": ""}, Payload: []byte("hello"), EventTime: -5},
			{SequenceID: 8, Payload: []byte{0, 1, 2, 255}},
			{SequenceID: 9, Payload: []byte{}},
		},
	}
}

func TestEncodeDecodeRoundTripIsExact(t *testing.T) {
	b := sample()
	p := Encode(b)
	if len(p) != Size(b) {
		t.Fatalf("Size = %d, encoded %d", Size(b), len(p))
	}
	got, err := Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	// Decode returns nil for empty payloads and property maps; normalise.
	want := sample()
	for i := range got.Messages {
		if len(got.Messages[i].Payload) == 0 && len(want.Messages[i].Payload) == 0 {
			got.Messages[i].Payload, want.Messages[i].Payload = nil, nil
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestDecodeRejectsEveryFlippedByte(t *testing.T) { checkEveryFlipRejected(t, Encode(sample())) }

// checkEveryFlipRejected fails unless Decode rejects p with any one byte
// changed.
func checkEveryFlipRejected(t *testing.T, p []byte) {
	t.Helper()
	for i := range p {
		q := bytes.Clone(p)
		q[i] ^= 0x40
		if _, err := Decode(q); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip at %d: err = %v, want ErrCorrupt", i, err)
		}
	}
}

func TestDecodeRejectsTruncation(t *testing.T) {
	p := Encode(sample())
	for n := 0; n < len(p); n++ {
		if _, err := Decode(p[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: err = %v", n, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(sample()))
	f.Add(Encode(&Batch{Messages: []Message{{}}}))
	f.Add([]byte("SE\x01\x00"))
	for _, c := range codecs {
		f.Add(compressedEntry(f, c, compressible(10)))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := Decode(p)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// Whatever decodes must re-encode to a payload that decodes the same.
		again, err := Decode(Encode(b))
		if err != nil || len(again.Messages) != len(b.Messages) {
			t.Fatalf("re-encode failed: %v", err)
		}
	})
}

func TestEncodeIsDeterministicWithManyProperties(t *testing.T) {
	props := map[string]string{}
	for i := range 20 {
		props[string(rune('a'+i))] = "v"
	}
	b := &Batch{Messages: []Message{{Properties: props, Payload: []byte("x")}}}
	first := Encode(b)
	for range 20 {
		if !bytes.Equal(Encode(b), first) {
			t.Fatal("two encodings of one batch differ")
		}
	}
}

// encodeMessages is what a producer sends: its messages, each encoded.
func encodeMessages(b *Batch) []byte {
	var p []byte
	for i := range b.Messages {
		p = AppendMessage(p, &b.Messages[i])
	}
	return p
}

func TestEntryFromEncodedMessagesHasTheBytesOfEncode(t *testing.T) {
	b := sample()
	msgs := encodeMessages(b)
	got := AppendEntry(nil, b.ProducerName, b.PublishTime, len(b.Messages), msgs)
	if !bytes.Equal(got, Encode(b)) {
		t.Fatal("AppendEntry differs from Encode of the same batch")
	}
	if n := EntrySize(b.ProducerName, b.PublishTime, len(b.Messages), len(msgs)); n != len(got) {
		t.Fatalf("EntrySize %d, entry has %d bytes", n, len(got))
	}
	ms, err := DecodeMessages(msgs, len(b.Messages))
	if err != nil {
		t.Fatal(err)
	}
	for i := range ms {
		if MessageSize(&ms[i]) != MessageSize(&b.Messages[i]) || ms[i].SequenceID != b.Messages[i].SequenceID ||
			ms[i].Key != b.Messages[i].Key || !bytes.Equal(ms[i].Payload, b.Messages[i].Payload) ||
			ms[i].EventTime != b.Messages[i].EventTime || len(ms[i].Properties) != len(b.Messages[i].Properties) {
			t.Fatalf("message %d: got %+v, want %+v", i, ms[i], b.Messages[i])
		}
	}
}

func TestDecodeMessagesRejectsWhatAnEntryCouldNotHold(t *testing.T) {
	msgs := encodeMessages(sample())
	// A property map sent out of order would make an entry whose bytes a
	// rebuild from the object store would not reproduce.
	unsorted := AppendMessage(nil, &Message{SequenceID: 1})
	unsorted = unsorted[:len(unsorted)-2] // drop the empty property count and payload
	unsorted = append(unsorted, 2, 1, 'b', 0, 1, 'a', 0, 0)
	for name, tc := range map[string]struct {
		p     []byte
		count int
	}{
		"count too high":  {msgs, 4},
		"count too low":   {msgs, 2},
		"count zero":      {msgs, 0},
		"truncated":       {msgs[:len(msgs)-1], 3},
		"unsorted props":  {unsorted, 1},
		"empty":           {nil, 1},
		"huge count":      {msgs, 1 << 30},
		"length past end": {[]byte{1, 0, 0, 0, 200}, 1},
	} {
		if _, err := DecodeMessages(tc.p, tc.count); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := DecodeMessages(unsorted[:0], 0); err == nil {
		t.Error("zero messages accepted")
	}
}

func FuzzDecodeMessages(f *testing.F) {
	f.Add(encodeMessages(sample()), 3)
	f.Add([]byte{1, 0, 0, 0, 0}, 1)
	f.Add([]byte{0x81, 0x00, 0, 0, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, p []byte, count int) {
		ms, err := DecodeMessages(p, count)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// Whatever is accepted is canonical: re-encoding gives p back, so
		// the entry made of p is the entry Encode makes of the batch.
		if again := encodeMessages(&Batch{Messages: ms}); !bytes.Equal(again, p) {
			t.Fatalf("accepted bytes are not canonical:\n got %x\nwant %x", again, p)
		}
	})
}

func TestDeliverAtIsTheLatestValidTimeOfTheBatch(t *testing.T) {
	b := &Batch{Messages: []Message{
		{Properties: map[string]string{DeliverAtProperty: "100"}},
		{Properties: map[string]string{DeliverAtProperty: "300"}},
		{Properties: map[string]string{DeliverAtProperty: "not a time"}},
		{},
	}}
	if got := DeliverAt(b); got != 300 {
		t.Fatalf("DeliverAt = %d, want 300", got)
	}
	if got := DeliverAt(&Batch{Messages: []Message{{}}}); got != 0 {
		t.Fatalf("DeliverAt of an undelayed batch = %d, want 0", got)
	}
}
