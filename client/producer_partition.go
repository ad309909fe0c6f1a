package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving/servingpb"
)

// pendingSlab is how many pendingMsgs are allocated at once.
const pendingSlab = 256

// pendingMsg is one message from enqueue to its receipt.
type pendingMsg struct {
	msg       *ProducerMessage
	cb        func(MessageID, *ProducerMessage, error)
	seq       uint64
	size      int
	enqueued  time.Time
	deliverAt int64 // unix nanoseconds; 0: no delay
}

// sentBatch is a batch that was cut from the queue: sent on the current
// stream, or waiting to be resent on the next one.
type sentBatch struct {
	msgs []*pendingMsg
	req  *servingpb.ProduceRequest // set by the send loop, which alone reads it, right after the cut
	// enc is the buffer req's uncompressed bytes are in (nil when they went
	// compressed): resolve hands it back to the send loop for a later batch
	// (guarded by partitionProducer.mu).
	enc    []byte
	bytes  int
	sentAt time.Time // when last sent (guarded by partitionProducer.mu)
	// streamNo is its number among the batches sent on the current stream,
	// from 1 (guarded by partitionProducer.mu), as Throttled names it.
	streamNo uint64
}

func (b *sentBatch) first() uint64 { return b.msgs[0].seq }
func (b *sentBatch) last() uint64  { return b.msgs[len(b.msgs)-1].seq }

type produceStream = grpc.BidiStreamingClient[servingpb.ProduceRequest, servingpb.ProduceResponse]

// partitionProducer produces to one topic partition over one stream at a
// time. Its run goroutine connects, resends what was not acknowledged, cuts
// batches and sends them; a receive goroutine per stream resolves receipts.
//
// Invariant: mu.inflight then mu.queued hold, in sequence order, every message
// enqueued and not yet resolved; resolution happens only at the head.
type partitionProducer struct {
	c         *Client
	cfg       *producerConfig
	log       *slog.Logger
	topic     string
	partition int32
	lim       *limiter
	kick      chan struct{} // wakes the run loop: queue changed or flush requested
	// cbMu is held while messages are taken from the head and their
	// callbacks run (receipts, errors, timeouts, failure), so callbacks run
	// in sequence order. LOCKORDER: cbMu before mu.
	cbMu   sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	// closing is closed by close: the send loop half-closes its stream and
	// waits for the node to end it (closeOnce guards it).
	closing   chan struct{}
	closeOnce sync.Once
	// recvEndGrace is defaultRecvEndGrace (shorter in tests).
	recvEndGrace time.Duration

	mu struct {
		sync.Mutex
		name        string
		seqInit     bool
		nextSeq     uint64
		maxMsgBytes int
		// schemaVersion is what the messages carry (ProducerSchema), in
		// decimal; "" when the producer has no schema.
		schemaVersion string
		// streamSent counts the batches sent on the current stream.
		streamSent uint64
		// heldBatch is the batch (streamNo) the node last said it holds
		// back for the publish rate (serving's Throttled), and heldUntil
		// when that notice runs out: by then the node sends another or
		// takes the batch.
		heldBatch   uint64
		heldUntil   time.Time
		queued      []*pendingMsg
		slab        []pendingMsg // where queued messages are allocated, pendingSlab at a time
		queuedBytes int
		inflight    []*sentBatch
		flushAll    bool
		resolved    int64         // highest sequence id resolved (-1: none)
		progress    chan struct{} // closed and replaced when resolved moves
		err         error         // terminal: every later send fails with it
		hint        string        // owner address from a redirect
		addr        string        // node of the current stream
		suspect     string        // node whose stream was abandoned for a missing receipt
		expiry      *time.Timer   // pending send-timeout check (nil: none)
		// spareEnc are encode buffers of resolved batches, which the send
		// loop alone takes, so that one still being sent or resent is never
		// written over: at a steady rate it then encodes every batch into a
		// buffer it already has instead of a new one for the collector.
		spareEnc [][]byte
	}
	// ems is the send loop's scratch for encoding a batch.
	ems []entry.Message
}

// Encode buffers kept for reuse: a few per producer partition, none larger
// than a batch's usual size, so that a burst of large batches is not kept.
const (
	maxSpareEnc      = 4
	maxSpareEncBytes = 1 << 20
)

func newPartitionProducer(c *Client, cfg *producerConfig, topic string, partition int32, name string) *partitionProducer {
	p := &partitionProducer{
		c: c, cfg: cfg, topic: topic, partition: partition,
		log:  c.cfg.logger.With("topic", topic),
		lim:  newLimiter(cfg.maxPendingMessages, cfg.maxPendingBytes),
		kick: make(chan struct{}, 1),
		done: make(chan struct{}),

		closing: make(chan struct{}),

		recvEndGrace: defaultRecvEndGrace,
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.mu.name = name
	p.mu.resolved = -1
	p.mu.progress = make(chan struct{})
	return p
}

// start connects (retrying retriable errors for up to the operation timeout,
// so that a bad topic fails the caller) and then starts the run goroutine.
// ctx bounds only this first connect.
func (p *partitionProducer) start(ctx context.Context) error {
	var done context.CancelFunc
	if p.cfg.access == AccessWaitForExclusive {
		ctx, done = context.WithCancel(ctx) // the wait in line is ctx's to bound
	} else {
		ctx, done = p.c.opContext(ctx)
	}
	defer done()
	stop := context.AfterFunc(ctx, p.cancel)
	var (
		st  produceStream
		err error
	)
	var last error // the last retriable failure, to report at the deadline
	for bo := p.c.newBackoff(); ; {
		st, err = p.connect(p.ctx)
		// A name in use fails the first open at once, as Pulsar's
		// does; a reconnect (run) retries it, since the server may not
		// have seen its old stream go yet.
		if err == nil || !errcode.IsRetriable(err) || errors.Is(err, ErrProducerBusy) {
			break
		}
		last = err
		if !bo.wait(p.ctx) {
			break
		}
	}
	err = atDeadline(ctx, err, last)
	if !stop() || err != nil {
		p.cancel()
		if err == nil {
			st.CloseSend()
			err = ctx.Err()
		}
		close(p.done)
		return err
	}
	go p.run(st)
	return nil
}

// atDeadline is the error a first open that retried until ctx ended
// reports: the last retriable failure (NOT_ENOUGH_BOOKIES, say) rather
// than the cancellation that cut the attempt in flight, which says
// nothing of why the open could not succeed.
func atDeadline(ctx context.Context, err, last error) error {
	if err == nil || last == nil || ctx.Err() == nil || err == last {
		return err
	}
	// Only a failure of the cut attempt itself is replaced: a real answer
	// that came just as the wait ended (a refusal, a busy name) stands.
	if c := errcode.CodeOf(err); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) &&
		c != errcode.Closed && c != errcode.Timeout {
		return err
	}
	return fmt.Errorf("%w (still failing when the open gave up: %w)", last, ctx.Err())
}

func (p *partitionProducer) name() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.name
}

func (p *partitionProducer) signal() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func messageSize(m *ProducerMessage) int {
	n := len(m.Payload) + len(m.Key)
	for k, v := range m.Properties {
		n += len(k) + len(v)
	}
	return n
}

// enqueue queues m, blocking while the pending limits are reached.
func (p *partitionProducer) enqueue(ctx context.Context, m *ProducerMessage, cb func(MessageID, *ProducerMessage, error)) error {
	size := messageSize(m)
	p.mu.Lock()
	maxBytes, err := p.mu.maxMsgBytes, p.mu.err
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if maxBytes > 0 && len(m.Payload) > maxBytes {
		return errcode.New(errcode.MessageTooLarge, "message of %d bytes over the topic's limit of %d", len(m.Payload), maxBytes)
	}
	if err := p.lim.acquire(ctx, size, p.cfg.failFast); err != nil {
		if errors.Is(err, ErrClosed) {
			return p.terminalErr()
		}
		return err
	}
	p.mu.Lock()
	if p.mu.err != nil {
		err := p.mu.err
		p.mu.Unlock()
		p.lim.release(1, size)
		return err
	}
	if len(p.mu.slab) == cap(p.mu.slab) {
		p.mu.slab = make([]pendingMsg, 0, pendingSlab)
	}
	now := time.Now()
	p.mu.slab = append(p.mu.slab, pendingMsg{msg: m, cb: cb, seq: p.mu.nextSeq, size: size, enqueued: now, deliverAt: m.deliverAt(now)})
	pm := &p.mu.slab[len(p.mu.slab)-1]
	p.mu.nextSeq++
	p.mu.queued = append(p.mu.queued, pm)
	p.mu.queuedBytes += size
	wake := len(p.mu.queued) == 1 || p.fullLocked()
	p.scheduleExpiryLocked()
	p.mu.Unlock()
	if wake {
		p.signal()
	}
	return nil
}

func (p *partitionProducer) terminalErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.err != nil {
		return p.mu.err
	}
	return ErrClosed
}

func (p *partitionProducer) fullLocked() bool {
	return len(p.mu.queued) >= p.cfg.batchMaxMessages || p.mu.queuedBytes >= p.cfg.batchMaxBytes
}

// flush sends what is queued now and waits until every message enqueued
// before the call is resolved (acknowledged or failed), or ctx ends.
func (p *partitionProducer) flush(ctx context.Context) error {
	p.mu.Lock()
	target := int64(p.mu.nextSeq) - 1
	if p.mu.err != nil {
		err := p.mu.err
		p.mu.Unlock()
		return err
	}
	if p.mu.resolved >= target {
		p.mu.Unlock()
		return nil
	}
	p.mu.flushAll = true
	p.mu.Unlock()
	p.signal()
	for {
		p.mu.Lock()
		done, ch := p.mu.resolved >= target || p.mu.err != nil, p.mu.progress
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// close stops the run goroutine and fails what was not acknowledged with
// ErrClosed. It blocks until the goroutines exit. It half-closes the
// stream and waits (up to closeGrace) for the node to end it, so that the
// node has let the producer go when close returns: an exclusive producer's
// successor may open at once.
func (p *partitionProducer) close() {
	p.closeOnce.Do(func() { close(p.closing) })
	t := time.NewTimer(closeGrace)
	select {
	case <-p.done:
	case <-t.C:
	}
	t.Stop()
	p.cancel()
	<-p.done
}

// stopping reports whether close was called or the producer cancelled.
func (p *partitionProducer) stopping() bool {
	select {
	case <-p.closing:
		return true
	default:
		return p.ctx.Err() != nil
	}
}

// run owns the connection: serve until the stream breaks, then reconnect
// (at once when the node says it no longer owns the topic, else after a
// backoff).
func (p *partitionProducer) run(st produceStream) {
	defer close(p.done)
	bo := p.c.newBackoff()
	// Backoffs end at close too, not only at cancel.
	waitCtx, stopWait := context.WithCancel(p.ctx)
	defer stopWait()
	go func() {
		select {
		case <-p.closing:
			stopWait()
		case <-waitCtx.Done():
		}
	}()
	opened := st != nil // the first stream, opened by start
	for {
		if st == nil {
			s, err := p.connect(p.ctx)
			if err != nil {
				if p.stopping() {
					break
				}
				if !errcode.IsRetriable(err) {
					p.log.Warn("producer failed", "err", err)
					p.fail(err)
					return
				}
				p.log.Debug("producer reconnect failed", "err", err)
				if !bo.wait(waitCtx) {
					break
				}
				continue
			}
			bo.reset()
			if opened {
				p.c.metrics.reconnected()
			}
			st, opened = s, true
		}
		err := p.serve(st)
		st = nil
		if p.stopping() {
			break
		}
		if errors.Is(err, ErrProducerFenced) { // another producer took the topic: for good
			p.log.Warn("producer fenced", "err", err)
			p.fail(err)
			return
		}
		p.log.Info("producer stream ended, reconnecting", "err", err)
		if err == errNoReceipt { //nolint:errorlint // this sentinel itself: errors.Is matches any TIMEOUT
			p.mu.Lock()
			p.mu.suspect = p.mu.addr
			p.mu.Unlock()
		}
		if to, ok := redirectOf(err); ok {
			// The topic moved or was unloaded: reconnect at once, to the
			// new owner or through a lookup (""), as Pulsar's clients do
			// on a topic-unloaded notice. A backoff here was the longest
			// part of a graceful unload.
			p.setHint(to)
			continue
		}
		if !bo.wait(waitCtx) {
			break
		}
	}
	p.fail(ErrClosed)
}

func (p *partitionProducer) setHint(addr string) {
	p.mu.Lock()
	p.mu.hint = addr
	p.mu.Unlock()
}

// connect opens a producer stream at the topic's owner.
func (p *partitionProducer) connect(ctx context.Context) (produceStream, error) {
	p.mu.Lock()
	name, hint, suspect := p.mu.name, p.mu.hint, p.mu.suspect
	p.mu.hint = ""
	// Only the first open waits in line or fences; a reconnect that finds
	// the topic taken fails as an exclusive one.
	mode, wait := servingpb.ProducerAccessMode(p.cfg.access), false
	switch {
	case p.cfg.access == AccessWaitForExclusive && !p.mu.seqInit:
		wait = true
	case p.cfg.access == AccessWaitForExclusive, p.cfg.access == AccessExclusiveWithFencing && p.mu.seqInit:
		mode = servingpb.ProducerAccessMode_ACCESS_EXCLUSIVE
	}
	p.mu.Unlock()
	var (
		st     produceStream
		opened *servingpb.ProducerOpened
	)
	addr, err := p.c.openAtOwnerAvoiding(ctx, p.topic, hint, suspect, func(ctx context.Context, b servingpb.BrokerClient, addr string) error {
		sctx, cancel := context.WithCancel(ctx)
		s, err := b.Produce(sctx)
		if err != nil {
			cancel()
			return err
		}
		timeout := p.handshakeTimeout(addr, suspect)
		if wait {
			timeout = 0
		}
		err = handshake(timeout, cancel, func() error {
			open := &servingpb.ProduceRequest{Kind: &servingpb.ProduceRequest_Open{Open: &servingpb.OpenProducer{Topic: p.topic, ProducerName: name,
				AccessMode: mode, Schema: p.cfg.schema.proto()}}}
			if err := sendOn(s, open); err != nil {
				return err
			}
			resp, err := s.Recv()
			if err != nil {
				return err
			}
			if opened = resp.GetOpened(); opened == nil {
				return errcode.New(errcode.Internal, "producer open: unexpected first response %T", resp.GetKind())
			}
			return nil
		})
		if err != nil {
			cancel()
			return err
		}
		st = &cancelStream{produceStream: s, cancel: cancel}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.mu.addr, p.mu.suspect = addr, ""
	p.mu.Unlock()
	p.opened(opened)
	return st, nil
}

// handshakeTimeout bounds the open handshake at addr: the operation timeout,
// or at most the receipt timeout with the node just abandoned for a missing
// receipt (which may be frozen while it still holds the topic's lease).
func (p *partitionProducer) handshakeTimeout(addr, suspect string) time.Duration {
	d := p.c.cfg.opTimeout
	if addr == suspect && p.cfg.receiptTimeout > 0 {
		d = min(d, p.cfg.receiptTimeout)
	}
	return d
}

// errNoReceipt ends a stream whose oldest batch in flight got no receipt
// within the receipt timeout.
var errNoReceipt = errcode.New(errcode.Timeout, "no receipt within the producer receipt timeout: connection suspect")

// cancelStream ends its context when the producer is done with it.
type cancelStream struct {
	produceStream
	cancel context.CancelFunc
}

func (p *partitionProducer) opened(o *servingpb.ProducerOpened) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.name == "" {
		p.mu.name = o.GetProducerName()
	}
	p.mu.maxMsgBytes = int(o.GetMaxMessageBytes())
	p.mu.schemaVersion = ""
	if o.SchemaVersion != nil {
		p.mu.schemaVersion = strconv.FormatUint(o.GetSchemaVersion(), 10)
	}
	if !p.mu.seqInit {
		p.mu.seqInit = true
		if last := o.GetLastSequenceId(); last >= 0 {
			p.mu.nextSeq = uint64(last) + 1
		}
		p.mu.resolved = int64(p.mu.nextSeq) - 1
	}
}

// sendOn sends req; when the stream has already ended, the reason is read
// from Recv. Only for a stream that no other goroutine reads (a handshake).
func sendOn[Req, Resp any](s grpc.BidiStreamingClient[Req, Resp], req *Req) error {
	err := s.Send(req)
	if errors.Is(err, io.EOF) {
		_, err = s.Recv()
		if err == nil || errors.Is(err, io.EOF) {
			err = errcode.New(errcode.Unavailable, "stream closed by the server")
		}
	}
	return err
}

// serve resends what was not acknowledged, then sends batches as they become
// due, until the stream fails or the producer closes.
//
// The receive goroutine is the stream's only reader: grpc-go delivers a
// stream's terminal status to exactly one Recv, so a second reader (say the
// sender asking why Send returned io.EOF) can take it and leave the receive
// goroutine blocked in Recv for good, even after the stream's context is
// cancelled. The sender therefore learns the reason from recvDone.
func (p *partitionProducer) serve(st produceStream) error {
	recvDone := make(chan error, 1)
	var abandoned atomic.Bool
	go func() { recvDone <- p.recvLoop(st, &abandoned) }()
	end := st.(*cancelStream).cancel
	var stale atomic.Bool
	stopWatch := p.watchReceipts(end, &stale)
	err, recvEnded := p.sendLoop(st, recvDone)
	stopWatch()
	end()
	if !recvEnded {
		rerr := p.awaitRecv(recvDone, &abandoned)
		if errors.Is(err, errStreamEnded) {
			err = rerr
		}
	}
	if stale.Load() {
		err = errNoReceipt
	}
	return err
}

// errStreamEnded is what the send loop returns when Send reports that the
// stream has ended (io.EOF): the reason is the receive goroutine's to read.
var errStreamEnded = errcode.New(errcode.Unavailable, "producer stream ended")

// defaultRecvEndGrace bounds the wait for the receive goroutine once its
// stream's context is cancelled, which ends a stream's Recv at once. Past it
// the connection to the node is closed, which ends every stream on it; past
// it again the goroutine is abandoned (fenced off from the producer's state).
const defaultRecvEndGrace = 5 * time.Second

// awaitRecv waits for the receive goroutine of a stream whose context is
// cancelled, and returns the reason its stream ended. It never waits forever.
func (p *partitionProducer) awaitRecv(recvDone <-chan error, abandoned *atomic.Bool) error {
	t := time.NewTimer(p.recvEndGrace)
	defer t.Stop()
	select {
	case err := <-recvDone:
		return err
	case <-t.C:
	}
	p.mu.Lock()
	addr := p.mu.addr
	p.mu.Unlock()
	p.log.Warn("producer stream still receiving after its cancellation: closing the connection", "addr", addr, "grace", p.recvEndGrace)
	p.c.dropConn(addr)
	t.Reset(p.recvEndGrace)
	select {
	case err := <-recvDone:
		return err
	case <-t.C:
	}
	p.log.Error("producer stream still receiving after its connection was closed: abandoning it", "addr", addr)
	abandoned.Store(true)
	return errcode.New(errcode.Unavailable, "producer stream at %s did not end after cancellation", addr)
}

// watchReceipts ends the stream (end) and sets stale when the oldest batch
// in flight has waited the receipt timeout. It runs apart from the send
// loop, which may be blocked in Send: a frozen node stops reading, so HTTP/2
// flow control stalls the sender once the window is full. The returned
// function stops it and waits for it.
func (p *partitionProducer) watchReceipts(end context.CancelFunc, stale *atomic.Bool) func() {
	if p.cfg.receiptTimeout <= 0 {
		return func() {}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(p.cfg.receiptTimeout)
		defer t.Stop()
		for {
			wait := p.cfg.receiptTimeout / 4
			if d, ok := p.receiptDeadline(); ok {
				if !time.Now().Before(d) {
					stale.Store(true)
					end()
					return
				}
				wait = time.Until(d)
			}
			t.Reset(wait)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

func (p *partitionProducer) sendLoop(st produceStream, recvDone <-chan error) (error, bool) {
	p.mu.Lock()
	resend := slices.Clone(p.mu.inflight)
	p.mu.streamSent, p.mu.heldBatch, p.mu.heldUntil = 0, 0, time.Time{} // a new stream numbers its batches afresh
	p.mu.Unlock()
	for _, b := range resend {
		p.markSent(b)
		if err := sendBatch(st, b.req); err != nil {
			return err, false
		}
	}
	timer := makeWakeTimer(&p.c.linger)
	defer timer.Close()
	// armed is the deadline the timer is set for (zero once it ticked): a
	// pass that finds the same oldest message need not set it again, which
	// takes the client's linger clock lock and may be a system call.
	var armed time.Time
	for {
		deadline, err := p.sendDue(st)
		if err != nil {
			return err, false
		}
		var timerC <-chan struct{}
		if !deadline.IsZero() {
			if !deadline.Equal(armed) {
				timer.Reset(time.Until(deadline))
				armed = deadline
			}
			timerC = timer.C()
		}
		select {
		case <-p.ctx.Done():
			return ErrClosed, false
		case <-p.closing:
			return p.halfClose(st, recvDone)
		case err := <-recvDone:
			return err, true
		case <-p.kick:
		case <-timerC:
			armed = time.Time{}
		}
	}
}

// halfClose ends the sending side of st and waits (up to closeGrace) for
// the node to end the stream, which it does once it has let the producer
// go. The send loop calls it: CloseSend must not race a Send.
func (p *partitionProducer) halfClose(st produceStream, recvDone <-chan error) (error, bool) {
	if err := st.CloseSend(); err != nil {
		return ErrClosed, false
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-recvDone:
		return ErrClosed, true
	case <-t.C:
		return ErrClosed, false
	}
}

// sendDue sends every batch that is due and returns when the next one will be
// (zero when nothing is queued).
func (p *partitionProducer) sendDue(st produceStream) (time.Time, error) {
	for {
		b, deadline := p.cut(time.Now())
		if b == nil {
			return deadline, nil
		}
		// Encoded (and compressed) outside mu, which Send waits for: only
		// this loop reads b.req, here and in the resends of the next stream.
		p.mu.Lock()
		version := p.mu.schemaVersion
		var buf []byte
		if n := len(p.mu.spareEnc); n > 0 {
			buf, p.mu.spareEnc = p.mu.spareEnc[n-1], p.mu.spareEnc[:n-1]
		}
		p.mu.Unlock()
		req, enc, spare := batchRequest(b.msgs, p.cfg.compression, version, &p.ems, buf)
		b.req = req
		if spare != nil {
			p.spare(spare)
		}
		p.mu.Lock()
		b.enc = enc // under mu: an expiry may resolve b meanwhile
		p.mu.Unlock()
		p.markSent(b)
		if err := sendBatch(st, b.req); err != nil {
			return time.Time{}, err
		}
	}
}

// sendBatch sends req on a stream whose receive goroutine runs: io.EOF (the
// stream has ended) becomes errStreamEnded, and Recv is left to that
// goroutine.
func sendBatch(st produceStream, req *servingpb.ProduceRequest) error {
	err := st.Send(req)
	if errors.Is(err, io.EOF) {
		return errStreamEnded
	}
	return wireErr(err)
}

// markSent records that b is being sent now (on this stream).
func (p *partitionProducer) markSent(b *sentBatch) {
	p.mu.Lock()
	b.sentAt = time.Now()
	p.mu.streamSent++
	b.streamNo = p.mu.streamSent
	p.mu.Unlock()
}

// throttleNoticeEvery is how often a node repeats Throttled while it holds
// a batch back (serving's maxThrottleSlice).
const throttleNoticeEvery = time.Second

// receiptDeadline is when the oldest batch in flight will have waited the
// receipt timeout for its receipt (false: none in flight, or no timeout).
func (p *partitionProducer) receiptDeadline() (time.Time, bool) {
	if p.cfg.receiptTimeout <= 0 {
		return time.Time{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.mu.inflight) == 0 || p.mu.inflight[0].sentAt.IsZero() {
		return time.Time{}, false
	}
	// A batch the node says it holds back for the topic's publish rate is
	// not late: its timeout runs from when that notice runs out. A notice
	// about a later batch proves nothing about this one.
	head := p.mu.inflight[0]
	from := head.sentAt
	if head.streamNo == p.mu.heldBatch {
		from = later(from, p.mu.heldUntil)
	}
	return from.Add(p.cfg.receiptTimeout), true
}

// maxInflightBatches bounds the batches sent and not yet answered, below the
// serving node's default per-producer limit (1000), which it answers with a
// PRODUCER_QUEUE_FULL error. Messages queued meanwhile form larger batches.
const maxInflightBatches = 512

// cut moves the next due batch from the queue to the in-flight list. A batch
// is due when it is full, when its oldest message has waited the linger, or
// when a flush asked for it.
func (p *partitionProducer) cut(now time.Time) (*sentBatch, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.mu.queued) == 0 {
		p.mu.flushAll = false
		return nil, time.Time{}
	}
	if len(p.mu.inflight) >= maxInflightBatches {
		return nil, time.Time{} // a receipt will wake the loop
	}
	due := p.mu.queued[0].enqueued.Add(p.cfg.linger)
	if !p.fullLocked() && !p.mu.flushAll && now.Before(due) {
		return nil, due
	}
	n, bytes := 0, 0
	for n < len(p.mu.queued) && n < p.cfg.batchMaxMessages {
		s := p.mu.queued[n].size
		// A batch is one entry, held back as a whole until its delivery
		// time: only messages of the same time go together.
		if n > 0 && (bytes+s > p.cfg.batchMaxBytes || p.mu.queued[n].deliverAt != p.mu.queued[0].deliverAt) {
			break
		}
		n, bytes = n+1, bytes+s
	}
	p.c.metrics.batchCut(p.mu.queued[0].enqueued, n, now)
	b := &sentBatch{msgs: slices.Clone(p.mu.queued[:n]), bytes: bytes}
	p.mu.queued = slices.Delete(p.mu.queued, 0, n)
	p.mu.queuedBytes -= bytes
	p.mu.inflight = append(p.mu.inflight, b)
	return b, time.Time{}
}

// spare keeps buf for a later batch's encoding, unless enough are kept.
func (p *partitionProducer) spare(buf []byte) {
	if cap(buf) > maxSpareEncBytes {
		return
	}
	p.mu.Lock()
	if len(p.mu.spareEnc) < maxSpareEnc {
		p.mu.spareEnc = append(p.mu.spareEnc, buf[:0])
	}
	p.mu.Unlock()
}

// batchRequest encodes msgs as the entry format does (internal/entry), so
// that the serving node writes the bytes as they are instead of decoding
// and re-encoding every message, and compresses them with c when that
// makes them smaller. It encodes into buf when buf is large enough, and
// uses *scratch for the messages' entry form. enc is the buffer the request
// holds (nil when it holds compressed bytes); spare is a buffer the request
// does not hold, free for another batch (nil when none).
func batchRequest(msgs []*pendingMsg, c Compression, schemaVersion string, scratch *[]entry.Message, buf []byte) (req *servingpb.ProduceRequest, enc, spare []byte) {
	ems := slices.Grow((*scratch)[:0], len(msgs))[:len(msgs)]
	// The scratch must not keep the batch's payloads and properties alive.
	defer func() { clear(ems); *scratch = ems[:0] }()
	size := 0
	for i, m := range msgs {
		props := m.msg.Properties
		if m.deliverAt != 0 || schemaVersion != "" {
			props = maps.Clone(props)
			if props == nil {
				props = make(map[string]string, 2)
			}
			if m.deliverAt != 0 {
				props[entry.DeliverAtProperty] = strconv.FormatInt(m.deliverAt, 10)
			}
			if schemaVersion != "" {
				props[schemaVersionProperty] = schemaVersion
			}
		}
		ems[i] = entry.Message{SequenceID: m.seq, Key: m.msg.Key, Properties: props, Payload: m.msg.Payload}
		if !m.msg.EventTime.IsZero() {
			ems[i].EventTime = m.msg.EventTime.UnixNano()
		}
		size += entry.MessageSize(&ems[i])
	}
	if cap(buf) >= size {
		enc = buf[:0]
	} else {
		// A buffer too small for this batch is dropped for a new one.
		enc = make([]byte, 0, size)
	}
	for i := range ems {
		enc = entry.AppendMessage(enc, &ems[i])
	}
	send := &servingpb.SendBatch{Encoded: enc, Count: uint32(len(msgs))}
	// An error here is a bug of a codec; the batch then goes uncompressed,
	// as does one too big for the node to decompress.
	if len(enc) > entry.MaxUncompressedBytes {
		c = CompressionNone
	}
	if z, err := entry.Compress(entry.Compression(c), enc); err == nil && z != nil {
		send.Encoded, send.Compression, send.UncompressedSize = z, servingpb.Compression(c), uint32(len(enc))
		enc, spare = nil, enc
	}
	return &servingpb.ProduceRequest{Kind: &servingpb.ProduceRequest_Send{Send: send}}, enc, spare
}

// recvLoop resolves receipts and per-batch errors in order until the stream
// fails; a retriable per-batch error also ends the stream, so that the batch
// and everything after it are resent in order on the next one. Once
// abandoned it returns at its next answer (one answer already being handled
// is harmless: popHead ignores a receipt for a batch resolved already).
func (p *partitionProducer) recvLoop(st produceStream, abandoned *atomic.Bool) error {
	for {
		resp, err := st.Recv()
		if abandoned.Load() {
			return errcode.New(errcode.Unavailable, "producer stream abandoned")
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errcode.New(errcode.Unavailable, "producer stream closed by the server")
			}
			return wireErr(err)
		}
		switch k := resp.GetKind().(type) {
		case *servingpb.ProduceResponse_Receipt:
			err = p.onReceipt(k.Receipt)
		case *servingpb.ProduceResponse_Error:
			err = p.onSendError(k.Error)
		case *servingpb.ProduceResponse_Throttled:
			wait := min(time.Duration(k.Throttled.GetWaitMs())*time.Millisecond, throttleNoticeEvery)
			p.mu.Lock()
			p.mu.heldBatch, p.mu.heldUntil = k.Throttled.GetBatch(), time.Now().Add(wait)
			p.mu.Unlock()
		}
		if err != nil {
			return err
		}
	}
}

// popHead removes the in-flight batch whose range is [first, last]. A range
// wholly before the head answers a batch resolved already (ok, nil batch).
func (p *partitionProducer) popHead(first, last uint64) (*sentBatch, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.mu.inflight) == 0 {
		if int64(last) <= p.mu.resolved {
			return nil, nil
		}
		return nil, errcode.New(errcode.Internal, "answer for sequence ids %d..%d with nothing in flight", first, last)
	}
	head := p.mu.inflight[0]
	if last < head.first() {
		return nil, nil
	}
	if first != head.first() || last != head.last() {
		return nil, errcode.New(errcode.Internal, "answer for sequence ids %d..%d, expected %d..%d", first, last, head.first(), head.last())
	}
	p.mu.inflight = p.mu.inflight[1:]
	return head, nil
}

func (p *partitionProducer) onReceipt(r *servingpb.SendReceipt) error {
	p.cbMu.Lock()
	defer p.cbMu.Unlock()
	b, err := p.popHead(r.GetFirstSequenceId(), r.GetLastSequenceId())
	if b == nil {
		return err
	}
	if p.c.metrics != nil { // b.sentAt is guarded by p.mu
		p.mu.Lock()
		p.c.metrics.receipt(b, time.Now())
		p.mu.Unlock()
	}
	for i, m := range b.msgs {
		if m.cb != nil {
			m.cb(MessageID{Ledger: r.GetLedger(), Entry: r.GetEntry(), Batch: int32(i), Partition: p.partition}, m.msg, nil)
		}
	}
	p.resolve(b)
	return nil
}

func (p *partitionProducer) onSendError(e *servingpb.SendError) error {
	err := &errcode.Error{Code: errcode.Code(e.GetCode()), Message: e.GetMessage()}
	if err.Code.Retriable() {
		return err
	}
	p.cbMu.Lock()
	defer p.cbMu.Unlock()
	b, perr := p.popHead(e.GetFirstSequenceId(), e.GetLastSequenceId())
	if b == nil {
		return perr
	}
	p.c.metrics.failed(len(b.msgs), err)
	for _, m := range b.msgs {
		if m.cb != nil {
			m.cb(MessageID{}, m.msg, err)
		}
	}
	p.resolve(b)
	return nil
}

// resolve marks b's messages resolved and returns their room.
func (p *partitionProducer) resolve(b *sentBatch) {
	for _, m := range b.msgs {
		// The slab that holds m may outlive it: let the message and the
		// callback go now.
		m.msg, m.cb = nil, nil
	}
	p.mu.Lock()
	if int64(b.last()) > p.mu.resolved {
		p.mu.resolved = int64(b.last())
	}
	close(p.mu.progress)
	p.mu.progress = make(chan struct{})
	// A resolved batch is never sent again, and the send loop, the only
	// reader of b.req, takes spare buffers only between its sends.
	enc := b.enc
	b.enc = nil
	p.mu.Unlock()
	p.lim.release(len(b.msgs), b.bytes)
	if enc != nil {
		p.spare(enc)
	}
	p.signal() // room for another batch in flight
}

// fail resolves every pending message with err and makes err terminal.
func (p *partitionProducer) fail(err error) {
	p.cbMu.Lock()
	defer p.cbMu.Unlock()
	p.lim.close()
	p.mu.Lock()
	if p.mu.err == nil {
		p.mu.err = err
	}
	if p.mu.expiry != nil {
		p.mu.expiry.Stop()
		p.mu.expiry = nil
	}
	var msgs []*pendingMsg
	for _, b := range p.mu.inflight {
		msgs = append(msgs, b.msgs...)
	}
	msgs = append(msgs, p.mu.queued...)
	p.mu.inflight, p.mu.queued, p.mu.queuedBytes = nil, nil, 0
	p.mu.Unlock()
	p.c.metrics.failed(len(msgs), err)
	for _, m := range msgs {
		if m.cb != nil {
			m.cb(MessageID{}, m.msg, err)
		}
	}
	p.mu.Lock()
	p.mu.resolved = int64(p.mu.nextSeq) - 1
	close(p.mu.progress)
	p.mu.progress = make(chan struct{})
	p.mu.Unlock()
}

// oldestLocked is the enqueue time of the oldest unresolved message.
func (p *partitionProducer) oldestLocked() (time.Time, bool) {
	if len(p.mu.inflight) > 0 {
		return p.mu.inflight[0].msgs[0].enqueued, true
	}
	if len(p.mu.queued) > 0 {
		return p.mu.queued[0].enqueued, true
	}
	return time.Time{}, false
}

// scheduleExpiryLocked arms the send-timeout check for the oldest message.
func (p *partitionProducer) scheduleExpiryLocked() {
	if p.cfg.sendTimeout <= 0 || p.mu.expiry != nil || p.mu.err != nil {
		return
	}
	if oldest, ok := p.oldestLocked(); ok {
		p.mu.expiry = time.AfterFunc(time.Until(oldest.Add(p.cfg.sendTimeout)), p.expire)
	}
}

// expire fails, with ErrTimeout, the messages sent more than the send
// timeout ago: whole in-flight batches from the head, then queued messages.
// Their sequence ids stay used; a late receipt for them is ignored.
func (p *partitionProducer) expire() {
	p.cbMu.Lock()
	defer p.cbMu.Unlock()
	cutoff := time.Now().Add(-p.cfg.sendTimeout)
	p.mu.Lock()
	p.mu.expiry = nil
	var msgs []*pendingMsg
	bytes := 0
	for len(p.mu.inflight) > 0 && !p.mu.inflight[0].msgs[0].enqueued.After(cutoff) {
		b := p.mu.inflight[0]
		p.mu.inflight = p.mu.inflight[1:]
		msgs, bytes = append(msgs, b.msgs...), bytes+b.bytes
	}
	for len(p.mu.inflight) == 0 && len(p.mu.queued) > 0 && !p.mu.queued[0].enqueued.After(cutoff) {
		m := p.mu.queued[0]
		p.mu.queued = p.mu.queued[1:]
		p.mu.queuedBytes -= m.size
		msgs, bytes = append(msgs, m), bytes+m.size
	}
	p.scheduleExpiryLocked()
	p.mu.Unlock()
	if len(msgs) == 0 {
		return
	}
	err := errcode.New(errcode.Timeout, "message not acknowledged within %v", p.cfg.sendTimeout)
	p.c.metrics.failed(len(msgs), err)
	for _, m := range msgs {
		if m.cb != nil {
			m.cb(MessageID{}, m.msg, err)
		}
	}
	p.resolve(&sentBatch{msgs: msgs, bytes: bytes})
}

// later answers the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
