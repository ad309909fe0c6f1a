package loadtest

import (
	"errors"
	"testing"
)

func TestHeaderRoundTrips(t *testing.T) {
	in := Header{Producer: 42, Partition: 3, Seq: 1<<40 + 7, SendUnixNano: -12345}
	buf := make([]byte, HeaderSize+10)
	in.Encode(buf)
	out, err := DecodeHeader(buf)
	if err != nil || out != in {
		t.Fatalf("got %+v, %v; want %+v", out, err, in)
	}
}

func TestDecodeHeaderRejectsForeignPayloads(t *testing.T) {
	for _, p := range [][]byte{nil, []byte("short"), make([]byte, HeaderSize)} {
		if _, err := DecodeHeader(p); !errors.Is(err, ErrBadPayload) {
			t.Fatalf("DecodeHeader(%q) err = %v", p, err)
		}
	}
}

func FuzzDecodeHeader(f *testing.F) {
	buf := make([]byte, HeaderSize)
	Header{Producer: 1, Seq: 2}.Encode(buf)
	f.Add(buf)
	f.Add([]byte("SLT1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		out := make([]byte, HeaderSize)
		h.Encode(out)
		if string(out) != string(b[:HeaderSize]) {
			t.Fatalf("decode/encode changed the header")
		}
	})
}
