package loadtest_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/hiccup"
)

// The floor benchmarks measure what this machine gives any broker beneath
// a publish, with no broker in the way: one gRPC round trip over loopback
// (the SDK's batch to a serving node), one direct 4 KiB write and fdatasync
// into a segment written with zeros (the journal's group), and the two in
// a row, each paced as a producer batch is at 150,000 msg/s of 100 B with
// a 1 ms linger (about 465 batches a second of about 290 messages). Their
// p99 is the least that the publish p99 at that rate can be here
// (docs/serving-benchmarks.md).
const (
	floorRate         = 465
	floorRequestBytes = 32 << 10
	floorSyncBytes    = 4 << 10
)

// floorService is one bidirectional stream that answers each request with
// a short reply once handle has returned.
func floorService(handle func([]byte) error) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "strata.floor.Floor",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName: "RoundTrip", ServerStreams: true, ClientStreams: true,
			Handler: func(_ any, ss grpc.ServerStream) error {
				req, reply := new(wrapperspb.BytesValue), wrapperspb.Bytes(make([]byte, 16))
				for {
					if err := ss.RecvMsg(req); err != nil {
						return nil // the client closed the stream
					}
					if err := handle(req.Value); err != nil {
						return err
					}
					if err := ss.SendMsg(reply); err != nil {
						return err
					}
				}
			},
		}},
	}
}

// syncer returns a function that writes 4 KiB at the end of a fresh
// zero-filled segment and fdatasyncs it, as the journal writes a small
// group.
func syncer(b *testing.B) func([]byte) error {
	seg, err := journal.Create(b.TempDir(), 1, 256<<20, true)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { seg.Close() })
	var written int64
	return func(p []byte) error {
		// Called from a gRPC handler too, where b.Fatal may not be: an
		// error fails the benchmark through the caller.
		if written += floorSyncBytes; written > 256<<20 {
			return errors.New("floor segment full: lower -benchtime")
		}
		if err := seg.Append(p[:floorSyncBytes]); err != nil {
			return err
		}
		_, err := seg.Sync()
		return err
	}
}

// roundTripper starts a gRPC server on loopback whose stream runs handle
// per request, and returns a function that sends one request and waits for
// its reply.
func roundTripper(b *testing.B, handle func([]byte) error) func([]byte) error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	srv.RegisterService(floorService(handle), nil)
	go srv.Serve(lis)
	b.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	st, err := cc.NewStream(ctx, &floorService(nil).Streams[0], "/strata.floor.Floor/RoundTrip")
	if err != nil {
		b.Fatal(err)
	}
	req, reply := new(wrapperspb.BytesValue), new(wrapperspb.BytesValue)
	return func(p []byte) error {
		req.Value = p
		if err := st.SendMsg(req); err != nil {
			return err
		}
		return st.RecvMsg(reply)
	}
}

// BenchmarkFloor reports the latency percentiles of each floor, paced at
// floorRate, beside how late this process woke a sleeping goroutine
// meanwhile (internal/hiccup).
//
//	go test -run '^$' -bench Floor -benchtime 10s ./loadtest/
func BenchmarkFloor(b *testing.B) {
	for _, c := range []struct {
		name string
		op   func(b *testing.B) func([]byte) error
	}{
		{"grpc-round-trip", func(b *testing.B) func([]byte) error {
			return roundTripper(b, func([]byte) error { return nil })
		}},
		{"fdatasync", syncer},
		{"grpc-round-trip+fdatasync", func(b *testing.B) func([]byte) error {
			return roundTripper(b, syncer(b))
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			op := c.op(b)
			payload := make([]byte, floorRequestBytes)
			lat := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
			meter := hiccup.Start()
			interval := time.Second / floorRate
			b.ResetTimer()
			next := time.Now()
			for range b.N {
				next = next.Add(interval)
				time.Sleep(time.Until(next))
				// From the send, not the schedule: a late wake-up is the
				// machine's too, but a floor should not count it twice.
				start := time.Now()
				if err := op(payload); err != nil {
					b.Fatal(err)
				}
				lat.RecordValue(time.Since(start).Microseconds())
			}
			b.StopTimer()
			hic := meter.Stop()
			b.ReportMetric(float64(lat.ValueAtQuantile(50)), "p50-µs")
			b.ReportMetric(float64(lat.ValueAtQuantile(99)), "p99-µs")
			b.ReportMetric(float64(lat.ValueAtQuantile(99.9)), "p99.9-µs")
			b.ReportMetric(float64(hic.ValueAtQuantile(99)), "hiccup-p99-µs")
		})
	}
}
