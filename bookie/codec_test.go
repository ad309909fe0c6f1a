package bookie

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/ids"
)

func marshalAdd(t testing.TB, m *bookiepb.AddRequest) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addRequests are requests at the edges of every field's range.
func addRequests() []*bookiepb.AddRequest {
	reqs := []*bookiepb.AddRequest{
		{},
		{RequestId: math.MaxUint64, LedgerId: math.MaxUint64, EntryId: math.MaxInt64, Lac: math.MaxInt64, Payload: []byte{0}, Recovery: true},
		{RequestId: 1, LedgerId: 2, EntryId: -1, Lac: -1, Payload: bytes.Repeat([]byte("x"), 70000)},
		{EntryId: math.MinInt64, Lac: math.MinInt64},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		p := make([]byte, rng.IntN(3000))
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		reqs = append(reqs, &bookiepb.AddRequest{RequestId: rng.Uint64(), LedgerId: rng.Uint64(), EntryId: rng.Int64() - math.MaxInt64/2,
			Lac: rng.Int64() - math.MaxInt64/2, Payload: p, Recovery: rng.IntN(2) == 0})
	}
	return reqs
}

func TestDecodeAddAgreesWithProtobufOnEveryField(t *testing.T) {
	for i, want := range addRequests() {
		got := new(bookiepb.AddRequest)
		if !decodeAdd(marshalAdd(t, want), got) {
			t.Fatalf("request %d: not decoded", i)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("request %d: decoded %v, want %v", i, got, want)
		}
	}
}

func TestDecodeAddKeepsTheLastOfARepeatedFieldAsProtobufDoes(t *testing.T) {
	b := marshalAdd(t, &bookiepb.AddRequest{LedgerId: 1, Payload: []byte("first")})
	b = append(b, marshalAdd(t, &bookiepb.AddRequest{LedgerId: 2, Payload: []byte("second")})...)
	want := new(bookiepb.AddRequest)
	if err := proto.Unmarshal(b, want); err != nil {
		t.Fatal(err)
	}
	got := new(bookiepb.AddRequest)
	if !decodeAdd(b, got) || !proto.Equal(got, want) || string(got.Payload) != "second" {
		t.Fatalf("decoded %v, protobuf %v", got, want)
	}
}

func TestDecodeAddLeavesUnknownFieldsAndBadInputToProtobuf(t *testing.T) {
	valid := marshalAdd(t, &bookiepb.AddRequest{LedgerId: 7, Payload: []byte("p")})
	unknown := protowire.AppendTag(bytes.Clone(valid), 99, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 1)
	wrongType := protowire.AppendTag(nil, 2, protowire.BytesType)
	wrongType = protowire.AppendBytes(wrongType, []byte("not a number"))
	for name, in := range map[string][]byte{
		"unknown field":      unknown,
		"wrong wire type":    wrongType,
		"truncated payload":  valid[:len(valid)-1],
		"truncated varint":   {0x08, 0x80},
		"bad tag":            {0x80},
		"payload as varint ": {0x28, 0x01},
	} {
		if decodeAdd(in, new(bookiepb.AddRequest)) {
			t.Errorf("%s: decoded", name)
		}
	}
}

// sliced cuts b into n buffers, as gRPC hands over a message that came in
// several frames.
func sliced(b []byte, n int) mem.BufferSlice {
	var s mem.BufferSlice
	step := max(1, len(b)/n)
	for len(b) > 0 {
		k := min(step, len(b))
		s = append(s, mem.SliceBuffer(bytes.Clone(b[:k])))
		b = b[k:]
	}
	return s
}

func TestServerCodecLeavesAPayloadInTheReceivedBufferUntilFreed(t *testing.T) {
	c := newServerCodec()
	want := &bookiepb.AddRequest{RequestId: 3, LedgerId: 4, EntryId: 5, Lac: 4, Payload: bytes.Repeat([]byte("ab"), 40000)}
	data := sliced(marshalAdd(t, want), 5)
	f := &addFrame{AddRequest: new(bookiepb.AddRequest)}
	if err := c.Unmarshal(data, f); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(f.AddRequest, want) {
		t.Fatalf("decoded %v", f.AddRequest)
	}
	if f.buf == nil {
		t.Fatal("payload was copied out: no buffer held")
	}
	held := f.buf.ReadOnlyData()
	start := uintptr(unsafe.Pointer(unsafe.SliceData(held)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(f.Payload)))
	if p < start || p+uintptr(len(f.Payload)) > start+uintptr(len(held)) {
		t.Fatal("payload does not point into the held buffer")
	}
	if cap(f.Payload) != len(f.Payload) {
		t.Fatalf("payload capacity %d runs past its %d bytes", cap(f.Payload), len(f.Payload))
	}
	f.free()
	f.free() // a second free is a no-op
	if f.buf != nil {
		t.Fatal("buffer still held after free")
	}
}

func TestServerCodecDecodesWhatItCannotAliasAsProtobufDoes(t *testing.T) {
	c := newServerCodec()
	valid := marshalAdd(t, &bookiepb.AddRequest{LedgerId: 7, Payload: []byte("p")})
	unknown := protowire.AppendTag(bytes.Clone(valid), 99, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 1)

	f := &addFrame{AddRequest: new(bookiepb.AddRequest)}
	if err := c.Unmarshal(sliced(unknown, 2), f); err != nil {
		t.Fatal(err)
	}
	if f.LedgerId != 7 || string(f.Payload) != "p" || f.buf != nil {
		t.Fatalf("decoded %v, buffer held %v", f.AddRequest, f.buf != nil)
	}
	if len(f.ProtoReflect().GetUnknown()) == 0 {
		t.Fatal("unknown field dropped")
	}

	f = &addFrame{AddRequest: new(bookiepb.AddRequest)}
	if err := c.Unmarshal(sliced(valid[:len(valid)-1], 2), f); err == nil {
		t.Fatal("truncated request decoded")
	}

	// Other messages are plain protobuf.
	r := new(bookiepb.ReadRequest)
	if err := c.Unmarshal(sliced(marshalAdd(t, &bookiepb.AddRequest{RequestId: 9}), 1), r); err != nil {
		t.Fatal(err)
	}
}

// addAndReadBack sends n adds of size bytes on each of streams Add streams
// to c, each of its own ledger, and checks every one is answered and reads
// back byte-identical.
func addAndReadBack(t *testing.T, c bookiepb.BookieClient, streams, n, size int) {
	t.Helper()
	var g errgroup.Group
	for s := range streams {
		l := ids.LedgerID(100 + s)
		g.Go(func() error {
			st, err := c.Add(context.Background())
			if err != nil {
				return err
			}
			go func() {
				for e := range int64(n) {
					if st.Send(&bookiepb.AddRequest{RequestId: uint64(e), LedgerId: uint64(l), EntryId: e, Lac: e - 1, Payload: payload(l, ids.EntryID(e), size)}) != nil {
						return
					}
				}
				st.CloseSend()
			}()
			for range n {
				resp, err := st.Recv()
				if err != nil {
					return err
				}
				if resp.ErrorCode != 0 {
					t.Errorf("ledger %d entry %d: %s", l, resp.EntryId, resp.ErrorMessage)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for s := range streams {
		l := ids.LedgerID(100 + s)
		got, err := readAll(t, c, &bookiepb.ReadRequest{LedgerId: uint64(l), FirstEntry: 0, LastEntry: int64(n - 1)})
		if err != nil || len(got) != n {
			t.Fatalf("ledger %d: read %d entries, %v", l, len(got), err)
		}
		for i, e := range got {
			if !bytes.Equal(e.Payload, payload(l, ids.EntryID(i), size)) {
				t.Fatalf("ledger %d entry %d: payload differs from what was added", l, i)
			}
		}
	}
}

// The received buffers go back to gRPC's pool once each add is answered and
// come back for later requests: an add whose payload was read after its
// buffer was reused would be stored with another add's bytes.
func TestLargeAddsOverGRPCAreStoredAsSentWhileReceiveBuffersAreReused(t *testing.T) {
	_, c := startService(t, testConfig(t.TempDir()))
	addAndReadBack(t, c, 3, 200, 64<<10)
}

func TestAServerBuiltWithoutTheBookiesOptionsStillStoresAdds(t *testing.T) {
	c, _ := dial(t, serveWith(t, openBookie(t, testConfig(t.TempDir()))))
	addAndReadBack(t, c, 2, 50, 100<<10)
}

func FuzzDecodeAdd(f *testing.F) {
	for _, r := range addRequests()[:6] {
		f.Add(marshalAdd(f, r))
	}
	f.Add([]byte{0x08, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := new(bookiepb.AddRequest)
		if !decodeAdd(b, got) {
			return
		}
		want := new(bookiepb.AddRequest)
		if err := proto.Unmarshal(b, want); err != nil {
			t.Fatalf("decoded input protobuf refuses: %v", err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("decoded %v, protobuf %v", got, want)
		}
	})
}
