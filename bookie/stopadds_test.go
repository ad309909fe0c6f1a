package bookie

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/errcode"
)

// recvWithin receives from st, failing the test if nothing comes within a
// deadline.
func recvWithin(t *testing.T, st bookiepb.Bookie_AddClient) (*bookiepb.AddResponse, error) {
	t.Helper()
	type result struct {
		resp *bookiepb.AddResponse
		err  error
	}
	c := make(chan result, 1)
	go func() { r, err := st.Recv(); c <- result{r, err} }()
	select {
	case r := <-c:
		return r.resp, r.err
	case <-time.After(20 * time.Second):
		t.Fatal("the Add stream neither answered nor ended")
		return nil, nil
	}
}

// After StopAdds an Add stream answers the add it holds (held before its
// fdatasync here), once durable, and only then ends with a typed
// UNAVAILABLE; a new Add stream ends at once. Over gRPC and in process.
func TestStopAddsAnswersTheAddsInFlightThenEndsTheAddStreams(t *testing.T) {
	for _, transport := range []string{"grpc", "local"} {
		t.Run(transport, func(t *testing.T) {
			gate, syncing := make(chan struct{}), make(chan struct{}, 1)
			var once sync.Once
			b, err := open(testConfig(t.TempDir()), testLogger(t), hooks{beforeSync: func() {
				select {
				case syncing <- struct{}{}:
				default:
				}
				<-gate
			}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { once.Do(func() { close(gate) }); b.Close() })
			c := b.LocalClient()
			if transport == "grpc" {
				c, _ = dial(t, serve(t, b))
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st, err := c.Add(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&bookiepb.AddRequest{RequestId: 1, LedgerId: 1, EntryId: 0, Lac: -1, Payload: []byte("held")}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-syncing:
			case <-time.After(20 * time.Second):
				t.Fatal("the add never reached the journal's fdatasync")
			}
			b.StopAdds()
			once.Do(func() { close(gate) })
			resp, err := recvWithin(t, st)
			if err != nil || resp.ErrorCode != 0 || resp.EntryId != 0 {
				t.Fatalf("the add held at StopAdds: %+v, %v; want it answered", resp, err)
			}
			if e, err := b.Read(1, 0); err != nil || string(e.Payload) != "held" {
				t.Fatalf("the answered add: %+v, %v; want it stored", e, err)
			}
			if _, err := recvWithin(t, st); !errcode.IsAnswer(err) || errcode.CodeOf(errcode.FromError(err)) != errcode.Unavailable {
				t.Fatalf("stream end after StopAdds: %v, want the bookie's UNAVAILABLE", err)
			}
			st2, err := c.Add(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := recvWithin(t, st2); !errcode.IsAnswer(err) || errcode.CodeOf(errcode.FromError(err)) != errcode.Unavailable {
				t.Fatalf("new Add stream after StopAdds: %v, want the bookie's UNAVAILABLE", err)
			}
		})
	}
}
