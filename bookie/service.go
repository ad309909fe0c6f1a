package bookie

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/internal/rpcpool"
)

// readChunkBytes is the payload size at which a ReadResponse is sent.
const readChunkBytes = 1 << 20

// Register registers the bookie's gRPC service on s. The server should be
// built with ServerOptions (error interceptors and message size limits);
// the service also converts its own errors with errcode.ToStatus, so codes
// cross the wire even on a server without the interceptors.
func (b *Bookie) Register(s *grpc.Server) {
	bookiepb.RegisterBookieServer(s, &service{b: b})
}

// ServerOptions returns the options a gRPC server hosting this bookie needs:
// the errcode interceptors, and message limits that let an entry of
// MaxEntryBytes through (so the size check answers with a typed per-add
// error). Clients reading large entries need grpc.MaxCallRecvMsgSize of at
// least MaxEntryBytes plus 1 KiB.
func (b *Bookie) ServerOptions() []grpc.ServerOption {
	limit := 2*b.cfg.MaxEntryBytes + (1 << 20)
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(errcode.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(errcode.StreamServerInterceptor()),
		grpc.MaxRecvMsgSize(limit),
		grpc.MaxSendMsgSize(limit),
		rpcpool.ServerOption(),
		grpc.ForceServerCodecV2(newServerCodec()),
		// Clients ping every 10 s (even without streams) to notice a frozen
		// peer; allow it, and drop clients that stop answering our pings.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}),
	}
}

type service struct {
	bookiepb.UnimplementedBookieServer
	b *Bookie
}

// addStream is the state of one Add stream: admission limits and the
// response queue. Every admitted or rejected add holds one slot until its
// response is sent, so pushing a response never blocks (the journal
// goroutines push them).
type addStream struct {
	out      chan *bookiepb.AddResponse
	slots    chan struct{}
	maxBytes int
	mu       sync.Mutex
	inFlight int
	stopped  bool // no more adds are taken (StopAdds); pending counts no more
	pending  sync.WaitGroup
}

// StopAdds makes the Add streams stop taking adds, for a shutdown: each
// answers the adds it has received (once durable, as always) and then ends
// with ErrShuttingDown, and a new one ends at once, so that writers move to
// other bookies instead of holding streams open for the server's grace.
// Other calls are served as before. Close still has to be called.
func (b *Bookie) StopAdds() { b.stopAddsOnce.Do(func() { close(b.addsStopped) }) }

// Add serves a pipelined Add stream: requests are read and queued without
// waiting for earlier ones; each is answered once durable or rejected, with
// a per-add error code. After StopAdds the stream ends once it has answered
// the adds it took.
func (s *service) Add(stream bookiepb.Bookie_AddServer) error {
	n := s.b.cfg.MaxInFlightAddsPerStream
	as := &addStream{
		out:      make(chan *bookiepb.AddResponse, n),
		slots:    make(chan struct{}, n),
		maxBytes: s.b.cfg.MaxInFlightBytesPerStream,
	}
	sendErr := make(chan error, 1)
	go as.sendLoop(stream, sendErr)
	// The receiver runs apart so that StopAdds can end the stream while it
	// waits for a request: it returns once this handler has (the stream's
	// context ends), taking no add after stop.
	recvErr := make(chan error, 1)
	go func() { recvErr <- s.recvLoop(stream, as) }()
	var err error
	select {
	case err = <-recvErr:
	case <-s.b.addsStopped:
		as.stop()
		err = ErrShuttingDown
	}
	as.pending.Wait()
	close(as.out)
	if serr := <-sendErr; err == nil {
		err = serr
	}
	return errcode.ToStatus(err)
}

func (s *service) recvLoop(stream bookiepb.Bookie_AddServer, as *addStream) error {
	ctx := stream.Context()
	for {
		f, err := recvAdd(stream)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case as.slots <- struct{}{}:
		case <-ctx.Done():
			f.free()
			return ctx.Err()
		}
		if !as.take() {
			f.free()
			return ErrShuttingDown
		}
		s.admit(ctx, as, f)
	}
}

// take counts one more add as pending, unless the stream has stopped
// taking adds.
func (as *addStream) take() bool {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.stopped {
		return false
	}
	as.pending.Add(1)
	return true
}

// stop makes take refuse from now on, so that pending can be waited for.
func (as *addStream) stop() {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.stopped = true
}

// recvAdd receives the next add. Over gRPC its payload may still sit in
// the received bytes (addFrame); an in-process stream hands over the
// sender's request itself.
func recvAdd(stream bookiepb.Bookie_AddServer) (*addFrame, error) {
	if local, ok := stream.(serverSide[bookiepb.AddRequest, bookiepb.AddResponse]); ok {
		req, err := local.Recv()
		if err != nil {
			return nil, err
		}
		return &addFrame{AddRequest: req}, nil
	}
	f := &addFrame{AddRequest: new(bookiepb.AddRequest)}
	if err := stream.RecvMsg(f); err != nil {
		return nil, err
	}
	return f, nil
}

// admit checks limits and queues one add; the add's slot and pending count
// are released, and its payload's buffer freed, when its response has been
// queued.
func (s *service) admit(ctx context.Context, as *addStream, f *addFrame) {
	req := f.AddRequest
	e := Entry{Ledger: ids.LedgerID(req.LedgerId), ID: ids.EntryID(req.EntryId), LAC: ids.EntryID(req.Lac), Payload: req.Payload, Recovery: req.Recovery}
	size := len(req.Payload)
	respond := func(err error) { as.respond(f, err, size) }
	if err := s.b.checkEntry(&e); err != nil {
		as.respond(f, err, 0)
		return
	}
	if !as.reserve(size) {
		as.respond(f, fmt.Errorf("%w: limit %d bytes", ErrTooManyInFlight, as.maxBytes), 0)
		return
	}
	if err := s.b.AddAsync(ctx, e, respond); err != nil {
		respond(err)
	}
}

func (as *addStream) reserve(size int) bool {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.inFlight > 0 && as.inFlight+size > as.maxBytes {
		return false
	}
	as.inFlight += size
	return true
}

// respond queues the response to f (never blocks: f holds a slot),
// releases size reserved bytes and frees f's buffer.
func (as *addStream) respond(f *addFrame, err error, size int) {
	as.mu.Lock()
	as.inFlight -= size
	as.mu.Unlock()
	resp := &bookiepb.AddResponse{RequestId: f.RequestId, LedgerId: f.LedgerId, EntryId: f.EntryId}
	f.free()
	if err != nil {
		resp.ErrorCode = uint32(errcode.CodeOf(err))
		resp.ErrorMessage = err.Error()
	}
	as.out <- resp
	as.pending.Done()
}

// sendLoop sends responses until out is closed. After a send error it keeps
// draining so that responders never block.
func (as *addStream) sendLoop(stream bookiepb.Bookie_AddServer, done chan<- error) {
	var err error
	for resp := range as.out {
		if err == nil {
			err = stream.Send(resp)
		}
		<-as.slots
	}
	done <- err
}

// Read streams entries first..last in order, batching small entries.
func (s *service) Read(req *bookiepb.ReadRequest, stream bookiepb.Bookie_ReadServer) error {
	var batch []*bookiepb.Entry
	batchBytes := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := stream.Send(&bookiepb.ReadResponse{Entries: batch})
		batch, batchBytes = nil, 0
		return err
	}
	maxBytes := int(min(req.MaxBytes, uint64(s.b.cfg.MaxReadBytes)))
	err := s.b.ReadRange(stream.Context(), ids.LedgerID(req.LedgerId), ids.EntryID(req.FirstEntry), ids.EntryID(req.LastEntry), maxBytes,
		func(e Entry) error {
			if batchBytes > 0 && batchBytes+len(e.Payload) > readChunkBytes {
				if err := flush(); err != nil {
					return err
				}
			}
			batch = append(batch, &bookiepb.Entry{EntryId: int64(e.ID), Lac: int64(e.LAC), Payload: e.Payload})
			batchBytes += len(e.Payload)
			return nil
		})
	if ferr := flush(); err == nil {
		err = ferr
	}
	return errcode.ToStatus(err)
}

// ReadLAC answers the ledger's LAC, long-polling when timeout_ms > 0.
func (s *service) ReadLAC(ctx context.Context, req *bookiepb.ReadLACRequest) (*bookiepb.ReadLACResponse, error) {
	wait := time.Duration(req.TimeoutMs) * time.Millisecond
	info, err := s.b.ReadLAC(ctx, ids.LedgerID(req.LedgerId), ids.EntryID(req.PreviousLac), wait)
	if err != nil {
		return nil, errcode.ToStatus(err)
	}
	return &bookiepb.ReadLACResponse{Lac: int64(info.LAC), LastEntry: int64(info.Last), Fenced: info.Fenced}, nil
}

// Fence fences the ledger durably and answers its LAC and last entry.
func (s *service) Fence(ctx context.Context, req *bookiepb.FenceRequest) (*bookiepb.FenceResponse, error) {
	lac, last, err := s.b.Fence(ctx, ids.LedgerID(req.LedgerId))
	if err != nil {
		return nil, errcode.ToStatus(err)
	}
	return &bookiepb.FenceResponse{Lac: int64(lac), LastEntry: int64(last)}, nil
}

// Delete deletes the ledger durably.
func (s *service) Delete(ctx context.Context, req *bookiepb.DeleteRequest) (*bookiepb.DeleteResponse, error) {
	if err := s.b.Delete(ctx, ids.LedgerID(req.LedgerId)); err != nil {
		return nil, errcode.ToStatus(err)
	}
	return &bookiepb.DeleteResponse{}, nil
}

// ListEntries answers the ranges of entries of a ledger the bookie
// stores, from its index.
func (s *service) ListEntries(_ context.Context, req *bookiepb.ListEntriesRequest) (*bookiepb.ListEntriesResponse, error) {
	rs, next, err := s.b.ListEntries(ids.LedgerID(req.LedgerId), ids.EntryID(req.FirstEntry), ids.EntryID(req.LastEntry))
	if err != nil {
		return nil, errcode.ToStatus(err)
	}
	resp := &bookiepb.ListEntriesResponse{Ranges: make([]*bookiepb.EntryRange, len(rs)), NextEntry: int64(next)}
	for i, r := range rs {
		resp.Ranges[i] = &bookiepb.EntryRange{FirstEntry: int64(r.First), LastEntry: int64(r.Last)}
	}
	return resp, nil
}

// ListLedgers answers a page of the ledgers the bookie stores, from its
// index.
func (s *service) ListLedgers(_ context.Context, req *bookiepb.ListLedgersRequest) (*bookiepb.ListLedgersResponse, error) {
	ls, next := s.b.ListLedgers(ids.LedgerID(req.FirstLedger))
	resp := &bookiepb.ListLedgersResponse{LedgerIds: make([]uint64, len(ls)), NextLedger: uint64(next)}
	for i, l := range ls {
		resp.LedgerIds[i] = uint64(l)
	}
	return resp, nil
}

// Health answers the bookie's id, whether its journal accepts writes, and
// whether it refuses new adds (read-only).
func (s *service) Health(context.Context, *bookiepb.HealthRequest) (*bookiepb.HealthResponse, error) {
	ro, _ := s.b.ReadOnly()
	return &bookiepb.HealthResponse{BookieId: s.b.id, Ready: s.b.failure() == nil, ReadOnly: ro}, nil
}
