package bookie

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mq/strata/bookie/bookiepb"
)

// LocalClient returns a bookiepb.BookieClient that calls this bookie in the
// same process: the gRPC service's own handlers (limits, per-add error
// codes, status errors) run against in-memory streams, without marshalling,
// sockets or the transport's goroutines. `strata standalone` gives it to
// its serving node for its own bookie: every publish crossed gRPC twice
// more than it needed to.
//
// Messages are passed by pointer, so a caller must not change a request
// after sending it (the ledger client builds one per add), and the handlers
// never change one. Call options are ignored.
func (b *Bookie) LocalClient() bookiepb.BookieClient { return localClient{s: &service{b: b}} }

type localClient struct{ s *service }

func (c localClient) Add(ctx context.Context, _ ...grpc.CallOption) (grpc.BidiStreamingClient[bookiepb.AddRequest, bookiepb.AddResponse], error) {
	p := newPipe[bookiepb.AddRequest, bookiepb.AddResponse](ctx)
	go p.serve(func() error { return c.s.Add(serverSide[bookiepb.AddRequest, bookiepb.AddResponse]{p}) })
	return clientSide[bookiepb.AddRequest, bookiepb.AddResponse]{p}, nil
}

func (c localClient) Read(ctx context.Context, in *bookiepb.ReadRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[bookiepb.ReadResponse], error) {
	p := newPipe[bookiepb.ReadRequest, bookiepb.ReadResponse](ctx)
	p.closeSend()
	go p.serve(func() error { return c.s.Read(in, serverSide[bookiepb.ReadRequest, bookiepb.ReadResponse]{p}) })
	return clientSide[bookiepb.ReadRequest, bookiepb.ReadResponse]{p}, nil
}

func (c localClient) ReadLAC(ctx context.Context, in *bookiepb.ReadLACRequest, _ ...grpc.CallOption) (*bookiepb.ReadLACResponse, error) {
	return c.s.ReadLAC(ctx, in)
}

func (c localClient) Fence(ctx context.Context, in *bookiepb.FenceRequest, _ ...grpc.CallOption) (*bookiepb.FenceResponse, error) {
	return c.s.Fence(ctx, in)
}

func (c localClient) Delete(ctx context.Context, in *bookiepb.DeleteRequest, _ ...grpc.CallOption) (*bookiepb.DeleteResponse, error) {
	return c.s.Delete(ctx, in)
}

func (c localClient) ListEntries(ctx context.Context, in *bookiepb.ListEntriesRequest, _ ...grpc.CallOption) (*bookiepb.ListEntriesResponse, error) {
	return c.s.ListEntries(ctx, in)
}

func (c localClient) ListLedgers(ctx context.Context, in *bookiepb.ListLedgersRequest, _ ...grpc.CallOption) (*bookiepb.ListLedgersResponse, error) {
	return c.s.ListLedgers(ctx, in)
}

func (c localClient) Health(ctx context.Context, in *bookiepb.HealthRequest, _ ...grpc.CallOption) (*bookiepb.HealthResponse, error) {
	return c.s.Health(ctx, in)
}

// pipeDepth is how many messages each direction of a local stream buffers:
// room to decouple the two sides, as the transport's buffers do.
const pipeDepth = 256

// pipe is an in-memory stream between a client and a handler, with gRPC's
// semantics: the handler's Recv ends with io.EOF after CloseSend and with
// the context's error when the client cancels; the client's Recv gets every
// message sent, then io.EOF or the handler's status error; a Send after the
// end fails with io.EOF.
type pipe[Req, Resp any] struct {
	ctx        context.Context
	reqs       chan *Req
	resps      chan *Resp
	sendClosed chan struct{}
	closeOnce  sync.Once
	done       chan struct{} // closed once the handler returned; err is set
	err        error
}

func newPipe[Req, Resp any](ctx context.Context) *pipe[Req, Resp] {
	return &pipe[Req, Resp]{
		ctx: ctx, reqs: make(chan *Req, pipeDepth), resps: make(chan *Resp, pipeDepth),
		sendClosed: make(chan struct{}), done: make(chan struct{}),
	}
}

func (p *pipe[Req, Resp]) serve(handler func() error) {
	p.err = handler()
	close(p.done)
}

func (p *pipe[Req, Resp]) closeSend() { p.closeOnce.Do(func() { close(p.sendClosed) }) }

// ctxErr is the status error gRPC gives for an ended context.
func (p *pipe[Req, Resp]) ctxErr() error { return status.FromContextError(p.ctx.Err()).Err() }

// clientSide is the caller's end: grpc.BidiStreamingClient and
// grpc.ServerStreamingClient.
type clientSide[Req, Resp any] struct{ p *pipe[Req, Resp] }

func (c clientSide[Req, Resp]) Send(m *Req) error {
	select {
	case <-c.p.done:
		return io.EOF
	default:
	}
	select {
	case c.p.reqs <- m:
		return nil
	case <-c.p.done:
		return io.EOF
	case <-c.p.ctx.Done():
		return c.p.ctxErr()
	}
}

func (c clientSide[Req, Resp]) Recv() (*Resp, error) {
	select {
	case m := <-c.p.resps:
		return m, nil
	case <-c.p.done:
		// Messages sent before the handler returned come first.
		select {
		case m := <-c.p.resps:
			return m, nil
		default:
		}
		if c.p.err != nil {
			return nil, c.p.err
		}
		return nil, io.EOF
	case <-c.p.ctx.Done():
		return nil, c.p.ctxErr()
	}
}

func (c clientSide[Req, Resp]) CloseSend() error             { c.p.closeSend(); return nil }
func (c clientSide[Req, Resp]) Header() (metadata.MD, error) { return metadata.MD{}, nil }
func (c clientSide[Req, Resp]) Trailer() metadata.MD         { return metadata.MD{} }
func (c clientSide[Req, Resp]) Context() context.Context     { return c.p.ctx }

func (c clientSide[Req, Resp]) SendMsg(m any) error { return sendMsg(m, c.Send) }
func (c clientSide[Req, Resp]) RecvMsg(m any) error { return recvMsg(m, c.Recv) }

// serverSide is the handler's end: grpc.BidiStreamingServer and
// grpc.ServerStreamingServer.
type serverSide[Req, Resp any] struct{ p *pipe[Req, Resp] }

func (s serverSide[Req, Resp]) Recv() (*Req, error) {
	select {
	case m := <-s.p.reqs:
		return m, nil
	case <-s.p.sendClosed:
		select { // requests sent before CloseSend come first
		case m := <-s.p.reqs:
			return m, nil
		default:
		}
		return nil, io.EOF
	case <-s.p.ctx.Done():
		return nil, s.p.ctxErr()
	case <-s.p.done:
		// As over gRPC, a receive left running when the handler returned
		// (Add after StopAdds) ends with it.
		return nil, io.EOF
	}
}

func (s serverSide[Req, Resp]) Send(m *Resp) error {
	select {
	case s.p.resps <- m:
		return nil
	case <-s.p.ctx.Done():
		return s.p.ctxErr()
	}
}

func (s serverSide[Req, Resp]) SetHeader(metadata.MD) error  { return nil }
func (s serverSide[Req, Resp]) SendHeader(metadata.MD) error { return nil }
func (s serverSide[Req, Resp]) SetTrailer(metadata.MD)       {}
func (s serverSide[Req, Resp]) Context() context.Context     { return s.p.ctx }

func (s serverSide[Req, Resp]) SendMsg(m any) error { return sendMsg(m, s.Send) }
func (s serverSide[Req, Resp]) RecvMsg(m any) error { return recvMsg(m, s.Recv) }

// sendMsg and recvMsg give a typed stream grpc.Stream's untyped methods.
func sendMsg[T any](m any, send func(*T) error) error {
	r, ok := m.(*T)
	if !ok {
		return errors.New("bookie: local stream: wrong message type")
	}
	return send(r)
}

func recvMsg[T any](m any, recv func() (*T, error)) error {
	r, err := recv()
	if err != nil {
		return err
	}
	return copyMsg(m, r)
}

// copyMsg copies src into dst, both protobuf messages of one type.
func copyMsg(dst, src any) error {
	d, ok1 := dst.(proto.Message)
	s, ok2 := src.(proto.Message)
	if !ok1 || !ok2 {
		return errors.New("bookie: local stream: not a protobuf message")
	}
	proto.Reset(d)
	proto.Merge(d, s)
	return nil
}
