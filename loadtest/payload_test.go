package loadtest

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/strata-mq/strata/internal/entry"
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

func TestTextFillerCompressesAndRandomFillerDoesNot(t *testing.T) {
	for _, tc := range []struct {
		kind     PayloadKind
		compress bool
	}{{PayloadText, true}, {PayloadRandom, false}} {
		f := makeFiller(tc.kind, 64<<10, rand.New(rand.NewPCG(1, 2)))
		if len(f) != 64<<10 {
			t.Fatalf("%s filler of %d bytes", tc.kind, len(f))
		}
		z, err := entry.Compress(entry.CompressionLZ4, f)
		if err != nil {
			t.Fatal(err)
		}
		if shrank := z != nil && len(z) < len(f)/2; shrank != tc.compress {
			t.Errorf("%s filler: %d bytes compressed to %d (nil: did not shrink)", tc.kind, len(f), len(z))
		}
	}
}
