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

func TestDecodeRejectsEveryFlippedByte(t *testing.T) {
	p := Encode(sample())
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
