package bookie

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// serve runs b's gRPC service on 127.0.0.1:0 until the test ends.
func serve(t testing.TB, b *Bookie) string { return serveWith(t, b, b.ServerOptions()...) }

// serveWith is serve on a server built with opts only.
func serveWith(t testing.TB, b *Bookie, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	b.Register(s)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func dial(t testing.TB, addr string) (bookiepb.BookieClient, *grpc.ClientConn) {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return bookiepb.NewBookieClient(cc), cc
}

func startService(t *testing.T, cfg Config) (*Bookie, bookiepb.BookieClient) {
	b := openBookie(t, cfg)
	c, _ := dial(t, serve(t, b))
	return b, c
}

// transports are the two ways to reach a bookie, gRPC on loopback and the
// in-process LocalClient: the service tests run against both, so the local
// one cannot drift from what the wire gives.
var transports = []struct {
	name  string
	start func(*testing.T, Config) bookiepb.BookieClient
}{
	{"grpc", func(t *testing.T, cfg Config) bookiepb.BookieClient { _, c := startService(t, cfg); return c }},
	{"local", func(t *testing.T, cfg Config) bookiepb.BookieClient { return openBookie(t, cfg).LocalClient() }},
}

func readAll(t *testing.T, c bookiepb.BookieClient, req *bookiepb.ReadRequest) ([]*bookiepb.Entry, error) {
	t.Helper()
	rs, err := c.Read(context.Background(), req)
	if err != nil {
		return nil, errcode.FromError(err)
	}
	var out []*bookiepb.Entry
	for {
		resp, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, errcode.FromError(err)
		}
		out = append(out, resp.Entries...)
	}
}

func TestPipelinedAddsAreAllAnsweredAndReadable(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := tr.start(t, testConfig(t.TempDir()))
			st, err := c.Add(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			const n = 500
			go func() {
				for e := range int64(n) {
					st.Send(&bookiepb.AddRequest{RequestId: uint64(e), LedgerId: 1, EntryId: e, Lac: e - 1, Payload: payload(1, ids.EntryID(e), 1000)})
				}
				st.CloseSend()
			}()
			seen := map[uint64]bool{}
			for range n {
				resp, err := st.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if resp.ErrorCode != 0 || seen[resp.RequestId] || resp.EntryId != int64(resp.RequestId) {
					t.Fatalf("bad response %+v", resp)
				}
				seen[resp.RequestId] = true
			}
			if _, err := st.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("stream end: %v", err)
			}
			got, err := readAll(t, c, &bookiepb.ReadRequest{LedgerId: 1, FirstEntry: 0, LastEntry: n - 1})
			if err != nil || len(got) != n {
				t.Fatalf("read: %d entries, %v", len(got), err)
			}
			for i, e := range got {
				if e.EntryId != int64(i) || e.Lac != int64(i-1) || !bytes.Equal(e.Payload, payload(1, ids.EntryID(i), 1000)) {
					t.Fatalf("entry %d differs", i)
				}
			}
			got, err = readAll(t, c, &bookiepb.ReadRequest{LedgerId: 1, FirstEntry: 10, LastEntry: 20, MaxBytes: 3000})
			if err != nil || len(got) != 3 || got[0].EntryId != 10 {
				t.Fatalf("max_bytes read: %d entries, %v", len(got), err)
			}
		})
	}
}

func TestAddLimitsReturnTypedPerAddErrors(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.MaxInFlightBytesPerStream = cfg.MaxEntryBytes
			c := tr.start(t, cfg)
			st, err := c.Add(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			send := func(req *bookiepb.AddRequest) *bookiepb.AddResponse {
				t.Helper()
				if err := st.Send(req); err != nil {
					t.Fatal(err)
				}
				resp, err := st.Recv()
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			if r := send(&bookiepb.AddRequest{RequestId: 1, LedgerId: 1, EntryId: 0, Lac: -1, Payload: make([]byte, cfg.MaxEntryBytes+1)}); errcode.Code(r.ErrorCode) != errcode.MessageTooLarge {
				t.Fatalf("oversize add: %+v", r)
			}
			if r := send(&bookiepb.AddRequest{RequestId: 2, LedgerId: 0, EntryId: 0}); errcode.Code(r.ErrorCode) != errcode.InvalidArgument {
				t.Fatalf("ledger 0: %+v", r)
			}
			if r := send(&bookiepb.AddRequest{RequestId: 3, LedgerId: 1, EntryId: -5}); errcode.Code(r.ErrorCode) != errcode.InvalidArgument {
				t.Fatalf("negative entry: %+v", r)
			}
			if r := send(&bookiepb.AddRequest{RequestId: 4, LedgerId: 1, EntryId: 0, Lac: -1, Payload: []byte("ok")}); r.ErrorCode != 0 {
				t.Fatalf("the stream should still work: %+v", r)
			}
			// Bursts of adds of 3/4 of the in-flight limit: the second of a burst
			// arrives while the first is in flight unless the disk is instant.
			deadline := time.Now().Add(30 * time.Second)
			for e := int64(1); ; e += 8 {
				for i := range int64(8) {
					st.Send(&bookiepb.AddRequest{RequestId: uint64(100 + e + i), LedgerId: 1, EntryId: e + i, Lac: -1, Payload: make([]byte, cfg.MaxEntryBytes*3/4)})
				}
				limited := false
				for range 8 {
					r, err := st.Recv()
					if err != nil {
						t.Fatal(err)
					}
					switch errcode.Code(r.ErrorCode) {
					case errcode.TooManyInFlight:
						limited = true
					case errcode.OK:
					default:
						t.Fatalf("unexpected error %+v", r)
					}
				}
				if limited {
					return
				}
				if time.Now().After(deadline) {
					t.Fatal("in-flight limit never applied")
				}
			}
		})
	}
}

func TestErrorsAreTypedAcrossTheWire(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ctx := context.Background()
			c := tr.start(t, testConfig(t.TempDir()))
			testTypedErrors(t, ctx, c)
		})
	}
}

// TestGRPCErrorsAreTypedWithoutInterceptors: a server built without
// ServerOptions still carries the codes.
func TestGRPCErrorsAreTypedWithoutInterceptors(t *testing.T) {
	c, _ := dial(t, serveWith(t, openBookie(t, testConfig(t.TempDir()))))
	testTypedErrors(t, context.Background(), c)
}

func testTypedErrors(t *testing.T, ctx context.Context, c bookiepb.BookieClient) {
	st, _ := c.Add(ctx)
	st.Send(&bookiepb.AddRequest{RequestId: 1, LedgerId: 3, EntryId: 0, Lac: -1, Payload: []byte("a")})
	if r, err := st.Recv(); err != nil || r.ErrorCode != 0 {
		t.Fatalf("add: %+v %v", r, err)
	}
	fr, err := c.Fence(ctx, &bookiepb.FenceRequest{LedgerId: 3})
	if err != nil || fr.Lac != -1 || fr.LastEntry != 0 {
		t.Fatalf("fence: %+v %v", fr, err)
	}
	st.Send(&bookiepb.AddRequest{RequestId: 2, LedgerId: 3, EntryId: 1, Lac: 0, Payload: []byte("b")})
	if r, _ := st.Recv(); errcode.Code(r.ErrorCode) != errcode.Fenced {
		t.Fatalf("add after fence: %+v", r)
	}
	st.Send(&bookiepb.AddRequest{RequestId: 3, LedgerId: 3, EntryId: 1, Lac: 0, Payload: []byte("b"), Recovery: true})
	if r, _ := st.Recv(); r.ErrorCode != 0 {
		t.Fatalf("recovery add after fence: %+v", r)
	}
	lac, err := c.ReadLAC(ctx, &bookiepb.ReadLACRequest{LedgerId: 3})
	if err != nil || !lac.Fenced || lac.LastEntry != 1 || lac.Lac != 0 {
		t.Fatalf("read lac: %+v %v", lac, err)
	}
	if _, err := readAll(t, c, &bookiepb.ReadRequest{LedgerId: 77, LastEntry: 1}); !errors.Is(err, ErrLedgerNotFound) {
		t.Fatalf("read unknown ledger: %v", err)
	}
	if _, err := readAll(t, c, &bookiepb.ReadRequest{LedgerId: 3, FirstEntry: 5, LastEntry: 1}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("read bad range: %v", err)
	}
	if _, err := c.Fence(ctx, &bookiepb.FenceRequest{}); !errors.Is(errcode.FromError(err), ErrInvalidArgument) {
		t.Fatalf("fence ledger 0: %v", err)
	}
	if _, err := c.Delete(ctx, &bookiepb.DeleteRequest{LedgerId: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, c, &bookiepb.ReadRequest{LedgerId: 3, LastEntry: 0}); !errors.Is(err, ErrLedgerNotFound) {
		t.Fatalf("read deleted: %v", err)
	}
	h, err := c.Health(ctx, &bookiepb.HealthRequest{})
	if err != nil || !h.Ready || h.BookieId == "" {
		t.Fatalf("health: %+v %v", h, err)
	}
}

// rawCodec sends and receives raw bytes, to put malformed frames on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func TestGRPCGarbageDoesNotCrashTheServer(t *testing.T) {
	ctx := context.Background()
	b := openBookie(t, testConfig(t.TempDir()))
	addr := serve(t, b)
	c, cc := dial(t, addr)
	// Not HTTP/2 at all.
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Write(bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 1000))
		conn.Close()
	}
	garbage := []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x99}
	var out []byte
	for _, m := range []string{"Fence", "Delete", "ReadLAC", "Health"} {
		err := cc.Invoke(ctx, "/strata.bookie.v1.Bookie/"+m, &garbage, &out, grpc.ForceCodec(rawCodec{}))
		if err == nil && m != "Health" {
			t.Fatalf("%s accepted garbage", m)
		}
	}
	desc := &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}
	if st, err := cc.NewStream(ctx, desc, "/strata.bookie.v1.Bookie/Add", grpc.ForceCodec(rawCodec{})); err == nil {
		st.SendMsg(&garbage)
		var resp []byte
		if err := st.RecvMsg(&resp); err == nil {
			t.Fatal("add stream accepted garbage")
		}
	}
	if h, err := c.Health(ctx, &bookiepb.HealthRequest{}); err != nil || !h.Ready {
		t.Fatalf("server unhealthy after garbage: %+v %v", h, err)
	}
	if _, err := c.ReadLAC(ctx, &bookiepb.ReadLACRequest{LedgerId: 5, PreviousLac: -1, TimeoutMs: 1}); err != nil {
		t.Fatalf("read lac after garbage: %v", err)
	}
}

func TestCancelledAddStreamEndsWithCanceled(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c := tr.start(t, testConfig(t.TempDir()))
			ctx, cancel := context.WithCancel(context.Background())
			st, err := c.Add(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&bookiepb.AddRequest{RequestId: 1, LedgerId: 1, EntryId: 0, Lac: -1, Payload: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			if r, err := st.Recv(); err != nil || r.ErrorCode != 0 {
				t.Fatalf("add: %+v %v", r, err)
			}
			cancel()
			if _, err := st.Recv(); status.Code(err) != codes.Canceled {
				t.Fatalf("Recv after cancel: %v, want codes.Canceled", err)
			}
		})
	}
}
