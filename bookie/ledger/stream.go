package ledger

import (
	"context"
	"sync"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// addStream is one Add stream to one bookie: a sender goroutine fed by a
// bounded queue and a receiver goroutine that posts answers to the loop
// that owns the stream.
type addStream struct {
	bookie string
	sendq  chan *bookiepb.AddRequest
	cancel context.CancelFunc
}

// streamSet holds a loop's Add streams, one per bookie, opened on first use.
// Only the owning loop goroutine calls its methods; the stream goroutines
// talk back through post.
type streamSet struct {
	c        *Client
	ledger   ids.LedgerID
	ctx      context.Context
	wg       *sync.WaitGroup
	queueCap int
	post     func(func()) // runs a function on the owning loop
	onResult func(bookie string, e ids.EntryID, err error)
	onBroken func(bookie string)

	streams map[string]*addStream
	nextReq uint64
}

// send queues op on its bookie's stream. It reports false when the queue is
// full (the bookie is too slow: the caller treats it as failed).
func (s *streamSet) send(op addOp) bool {
	st := s.streams[op.Bookie]
	if st == nil {
		st = s.open(op.Bookie)
	}
	s.nextReq++
	req := &bookiepb.AddRequest{
		RequestId: s.nextReq, LedgerId: uint64(s.ledger), EntryId: int64(op.Entry),
		Lac: int64(op.LAC), Payload: op.Payload, Recovery: op.Recovery,
	}
	select {
	case st.sendq <- req:
		return true
	default:
		s.drop(st)
		return false
	}
}

func (s *streamSet) open(b string) *addStream {
	ctx, cancel := context.WithCancel(s.ctx)
	st := &addStream{bookie: b, sendq: make(chan *bookiepb.AddRequest, s.queueCap), cancel: cancel}
	s.streams[b] = st
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(ctx, st)
	}()
	return st
}

// run opens the stream, starts its receiver and sends until ctx ends or
// the stream breaks.
func (s *streamSet) run(ctx context.Context, st *addStream) {
	broken := func() { s.post(func() { s.brokenOnLoop(st) }) }
	bc, err := s.c.bookie(st.bookie)
	if err != nil {
		broken()
		return
	}
	stream, err := bc.Add(ctx)
	if err != nil {
		broken()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.receive(stream, st, broken)
	}()
	for {
		select {
		case req := <-st.sendq:
			if err := stream.Send(req); err != nil {
				broken()
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (s *streamSet) receive(stream bookiepb.Bookie_AddClient, st *addStream, broken func()) {
	for {
		resp, err := stream.Recv()
		if err != nil {
			broken()
			return
		}
		var rerr error
		if resp.ErrorCode != 0 {
			rerr = &errcode.Error{Code: errcode.Code(resp.ErrorCode), Message: resp.ErrorMessage}
		}
		b, e := st.bookie, ids.EntryID(resp.EntryId)
		s.post(func() { s.onResult(b, e, rerr) })
	}
}

// brokenOnLoop retires a broken stream (if still current) and tells the
// owner; the next send to the bookie opens a new one.
func (s *streamSet) brokenOnLoop(st *addStream) {
	if s.streams[st.bookie] != st {
		return
	}
	s.drop(st)
	s.onBroken(st.bookie)
}

func (s *streamSet) drop(st *addStream) {
	st.cancel()
	if s.streams[st.bookie] == st {
		delete(s.streams, st.bookie)
	}
}

// closeAll cancels every stream (their goroutines exit on their own; the
// owner waits on wg).
func (s *streamSet) closeAll() {
	for _, st := range s.streams {
		s.drop(st)
	}
}
