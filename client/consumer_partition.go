package client

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving/servingpb"
)

type consumeStream = grpc.BidiStreamingClient[servingpb.ConsumeRequest, servingpb.ConsumeResponse]

// partitionConsumer consumes one topic partition over one stream at a time.
// Its run goroutine connects, subscribes, grants queueSize permits and
// receives into a bounded queue that the Consumer drains.
//
// LOCKORDER: sendMu, then acks, then mu; mu is never held while taking
// sendMu or acks.
type partitionConsumer struct {
	parent      *Consumer
	c           *Client
	log         *slog.Logger
	topic       string
	partition   int32
	nonDurable  bool
	queueSize   int
	ackGrouping time.Duration
	ctx         context.Context
	cancel      context.CancelFunc
	done        chan struct{}

	sendMu  sync.Mutex // one sender per stream at a time
	closing atomic.Bool
	// ended is set once the server said the topic was terminated and this
	// partition has been sent every message.
	ended atomic.Bool

	acks struct {
		sync.Mutex
		q     ackQueue    // acks.go
		timer *time.Timer // pending flush of a grouped ack
	}

	mu struct {
		sync.Mutex
		stream    consumeStream // nil while disconnected
		queue     []*Message
		sub       *servingpb.Subscribe // template of the subscribe request
		delivered int                  // taken by the application since the last refill
		last      *MessageID           // last message handed out (non-durable resume point)
		// lastIsStart: last is not a message handed out but the one before
		// a start id inside a batch (the rest of its entry is still to come).
		lastIsStart bool
		call        *pendingCall // the Seek, Unsubscribe or HasMessagesAfter waiting for its answer
		hint        string
		addr        string // node of the current stream
		suspect     string // node whose stream was left because the owner moved
		// epoch is the subscription's cursor epoch that the last stream
		// was told (Subscribed, then SeekDone): the messages it pushes
		// carry it, for their acks (acks.go). 0 from a node without.
		epoch uint64
	}
}

func newPartitionConsumer(parent *Consumer, topic string, partition int32, sub *servingpb.Subscribe, queueSize int, ackGrouping time.Duration) *partitionConsumer {
	pc := &partitionConsumer{
		parent: parent, c: parent.c, topic: topic, partition: partition, queueSize: queueSize, ackGrouping: ackGrouping,
		nonDurable: sub.GetNonDurable(),
		log:        parent.c.cfg.logger.With("topic", topic, "subscription", sub.GetSubscription()),
		done:       make(chan struct{}),
	}
	pc.mu.sub = sub
	pc.ctx, pc.cancel = context.WithCancel(context.Background())
	return pc
}

// start subscribes (retrying retriable errors for up to the operation
// timeout, so that other errors reach the caller), then starts the run
// goroutine. ctx bounds only this first subscribe.
func (pc *partitionConsumer) start(ctx context.Context) error {
	ctx, done := pc.c.opContext(ctx)
	defer done()
	stop := context.AfterFunc(ctx, pc.cancel)
	var (
		st     consumeStream
		cancel context.CancelFunc
		err    error
	)
	var last error // the last retriable failure, to report at the deadline
	for bo := pc.c.newBackoff(); ; {
		st, cancel, err = pc.connect(pc.ctx)
		// A subscription taken by another consumer fails the first
		// subscribe at once, as Pulsar's does; a reconnect (run)
		// retries it, since the server may not have seen its old stream
		// go yet.
		if err == nil || !errcode.IsRetriable(err) || errors.Is(err, ErrConsumerBusy) {
			break
		}
		last = err
		if !bo.wait(pc.ctx) {
			break
		}
	}
	err = atDeadline(ctx, err, last)
	if !stop() || err != nil {
		pc.cancel()
		if err == nil {
			cancel()
			err = ctx.Err()
		}
		close(pc.done)
		return err
	}
	// The stream is this consumer's from now on: a seek or an ack sent
	// before run's serve has begun goes on it instead of failing as if the
	// consumer were reconnecting.
	pc.mu.Lock()
	pc.mu.stream = st
	pc.mu.Unlock()
	go pc.run(st, cancel)
	return nil
}

// closeGrace bounds how long close waits for the server to take what was
// sent (acks) after the consumer half-closed its stream.
const closeGrace = 2 * time.Second

// close sends the queued acks and half-closes the stream, so that acks
// already sent reach the server, waits (up to closeGrace) for the server
// to end it, then stops the run goroutine and waits for it. A partition
// reconnecting with acks it could not send gets the same grace to
// subscribe again: serve then sends them, grants no permits and
// half-closes the stream.
func (pc *partitionConsumer) close() {
	pc.closing.Store(true) // before the stream is read: see serve
	pc.flushAcks()
	pc.mu.Lock()
	st := pc.mu.stream
	pc.mu.Unlock()
	switch {
	case st != nil:
		pc.halfClose(st)
		defer time.AfterFunc(closeGrace, pc.cancel).Stop()
	case pc.acksQueued():
		defer time.AfterFunc(closeGrace, pc.cancel).Stop()
	default:
		pc.cancel()
	}
	<-pc.done
	pc.cancel()
}

func (pc *partitionConsumer) halfClose(st consumeStream) {
	pc.sendMu.Lock()
	_ = st.CloseSend() // a second CloseSend (close's and serve's) does nothing
	pc.sendMu.Unlock()
}

func (pc *partitionConsumer) stopping() bool { return pc.ctx.Err() != nil || pc.closing.Load() }

func (pc *partitionConsumer) run(st consumeStream, cancel context.CancelFunc) {
	defer close(pc.done)
	bo := pc.c.newBackoff()
	for {
		if st == nil {
			s, c, err := pc.connect(pc.ctx)
			if err != nil {
				if pc.stopping() {
					return
				}
				if !errcode.IsRetriable(err) {
					pc.log.Warn("consumer failed", "err", err)
					pc.parent.fail(err)
					return
				}
				pc.log.Debug("consumer reconnect failed", "err", err)
				if !bo.wait(pc.ctx) {
					return
				}
				continue
			}
			if pc.ctx.Err() != nil { // a closing consumer's new stream takes its queued acks
				c()
				return
			}
			bo.reset()
			st, cancel = s, c
		}
		err := pc.serve(st, cancel)
		cancel()
		st = nil
		if pc.stopping() || err == errUnsubscribed {
			return // subscribing again would create the subscription again
		}
		pc.log.Info("consumer stream ended, resubscribing", "err", err)
		if to, ok := redirectOf(err); ok { // moved or unloaded: at once, as the producer does
			pc.mu.Lock()
			pc.mu.hint = to
			pc.mu.Unlock()
			continue
		}
		if !bo.wait(pc.ctx) {
			return
		}
	}
}

// subscribeRequest is the template, resumed after the last message handed
// out for a non-durable subscription.
func (pc *partitionConsumer) subscribeRequest() *servingpb.ConsumeRequest {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	s := proto.CloneOf(pc.mu.sub)
	if pc.nonDurable && pc.mu.last != nil {
		s.StartMessageId = pc.mu.last.proto()
		s.StartTimeUnixNano = 0
	}
	return &servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Subscribe{Subscribe: s}}
}

func (pc *partitionConsumer) connect(ctx context.Context) (consumeStream, context.CancelFunc, error) {
	pc.mu.Lock()
	hint, suspect := pc.mu.hint, pc.mu.suspect
	pc.mu.hint = ""
	pc.mu.Unlock()
	req := pc.subscribeRequest()
	var (
		st        consumeStream
		streamEnd context.CancelFunc
		epoch     uint64
	)
	addr, err := pc.c.openAtOwnerAvoiding(ctx, pc.topic, hint, suspect, func(ctx context.Context, b servingpb.BrokerClient, _ string) error {
		sctx, cancel := context.WithCancel(ctx)
		s, err := b.Consume(sctx)
		if err != nil {
			cancel()
			return err
		}
		err = handshake(pc.c.cfg.opTimeout, cancel, func() error {
			if err := sendOn(s, req); err != nil {
				return err
			}
			resp, err := s.Recv()
			if err != nil {
				return err
			}
			if resp.GetSubscribed() == nil {
				return errcode.New(errcode.Internal, "subscribe: unexpected first response %T", resp.GetKind())
			}
			epoch = resp.GetSubscribed().GetCursorEpoch()
			return nil
		})
		if err != nil {
			cancel()
			return err
		}
		st, streamEnd = s, cancel
		return nil
	})
	if err == nil {
		pc.mu.Lock()
		pc.mu.addr, pc.mu.suspect, pc.mu.epoch = addr, "", epoch
		pc.mu.Unlock()
	}
	return st, streamEnd, err
}

// consumerIdleCheck is how long a consumer stream may stay silent before
// the consumer checks, with a lookup at another node, that its node still
// owns the topic. A frozen owner (SIGSTOP, a long pause) keeps its TCP
// connection up and its stream silent; once its lease has moved, the
// consumer leaves it without waiting for gRPC keepalive (10 s + 3 s).
const consumerIdleCheck = 4 * time.Second

// watchOwner runs while a stream is served: each consumerIdleCheck without
// a response on it (lastRecv, unix nanoseconds), it looks the topic up,
// asking the stream's node last; when another node owns the topic, it
// notes that node as the next one to try and ends the stream (moved).
func (pc *partitionConsumer) watchOwner(ctx context.Context, lastRecv *atomic.Int64, endStream context.CancelFunc, moved *atomic.Bool) {
	pc.mu.Lock()
	addr := pc.mu.addr
	pc.mu.Unlock()
	t := time.NewTicker(consumerIdleCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, lastRecv.Load())) < consumerIdleCheck {
			continue
		}
		owner, err := pc.c.lookupAvoiding(ctx, pc.topic, addr)
		if err != nil || owner == "" || owner == addr {
			continue
		}
		pc.log.Info("consumer stream idle and the topic moved: leaving its node", "node", addr, "owner", owner)
		pc.mu.Lock()
		pc.mu.hint, pc.mu.suspect = owner, addr
		pc.mu.Unlock()
		moved.Store(true)
		endStream()
		return
	}
}

// serve grants permits and receives until the stream fails (or endStream is
// called because the topic moved while the stream was idle).
func (pc *partitionConsumer) serve(st consumeStream, endStream context.CancelFunc) error {
	pc.resumeAcks()
	pc.mu.Lock()
	pc.mu.queue, pc.mu.delivered, pc.mu.stream = nil, 0, st
	pc.mu.Unlock()
	pc.parent.forgetHanded(pc.partition)
	// Before the flow: the server must have the acks made while the
	// partition reconnected before it redelivers what the last stream
	// left unacknowledged, or those messages would come twice.
	pc.flushAcks()
	var (
		lastRecv atomic.Int64
		moved    atomic.Bool
		watching sync.WaitGroup
	)
	lastRecv.Store(time.Now().UnixNano())
	wctx, stopWatch := context.WithCancel(pc.ctx)
	watching.Add(1)
	go func() {
		defer watching.Done()
		pc.watchOwner(wctx, &lastRecv, endStream, &moved)
	}()
	defer func() {
		stopWatch()
		watching.Wait()
	}()
	var err error
	if pc.closing.Load() { // close saw no stream, or this one: it waits for the server to end it
		pc.halfClose(st)
	} else {
		err = pc.send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Flow{Flow: &servingpb.Flow{Permits: uint32(pc.queueSize)}}})
	}
	for err == nil {
		var resp *servingpb.ConsumeResponse
		resp, err = st.Recv()
		lastRecv.Store(time.Now().UnixNano())
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errcode.New(errcode.Unavailable, "consumer stream closed by the server")
			}
			err = wireErr(err)
			if moved.Load() {
				err = errcode.New(errcode.Unavailable, "topic moved while the consumer stream was idle")
			}
			break
		}
		switch k := resp.GetKind().(type) {
		case *servingpb.ConsumeResponse_Messages:
			err = pc.push(k.Messages.GetMessages())
		case *servingpb.ConsumeResponse_SeekDone:
			pc.seekDone(k.SeekDone.GetCursorEpoch())
		case *servingpb.ConsumeResponse_Unsubscribed:
			err = pc.unsubscribed(k.Unsubscribed)
		case *servingpb.ConsumeResponse_HasMessagesAfterResult:
			pc.answer(callHasMessagesAfter, callAnswer{yes: k.HasMessagesAfterResult.GetYes()})
		case *servingpb.ConsumeResponse_EndOfTopic:
			pc.ended.Store(true)
			pc.parent.wake()
		}
	}
	pc.mu.Lock()
	pc.mu.stream, pc.mu.queue = nil, nil // the server redelivers what was not acknowledged
	call := pc.mu.call
	pc.mu.call = nil
	pc.mu.Unlock()
	pc.streamEnded(err)
	if call != nil {
		call.ch <- callAnswer{err: err}
	}
	return err
}

// A pendingCall is a request on the consume stream waiting for its answer.
// There is one at a time: the server keeps room in the consumer's response
// queue for one such answer.
type pendingCall struct {
	kind callKind
	ch   chan callAnswer // buffered: the answer never blocks serve
	// seekTo is a seek's target id, when it has one (seekDone's).
	seekTo *servingpb.MessageId
}

type callKind int

const (
	callSeek callKind = iota
	callUnsubscribe
	callHasMessagesAfter
)

type callAnswer struct {
	err error
	yes bool // HasMessagesAfterResult
}

// answer hands a to the pending call when it is of kind (an answer to a
// call whose caller gave up is dropped).
func (pc *partitionConsumer) answer(kind callKind, a callAnswer) {
	pc.mu.Lock()
	call := pc.mu.call
	if call == nil || call.kind != kind {
		pc.mu.Unlock()
		return
	}
	pc.mu.call = nil
	pc.mu.Unlock()
	call.ch <- a
}

// errUnsubscribed ends serve (and run) after the server deleted the
// subscription; the waiting Unsubscribe got nil before it.
var errUnsubscribed = errors.New("unsubscribed")

// unsubscribed hands the server's answer to the waiting Unsubscribe and
// answers errUnsubscribed when the subscription is gone (nil otherwise:
// the stream goes on).
func (pc *partitionConsumer) unsubscribed(u *servingpb.Unsubscribed) error {
	var err error
	if code := errcode.Code(u.GetErrorCode()); code != errcode.OK {
		err = errcode.New(code, "%s", u.GetErrorMessage())
	}
	pc.answer(callUnsubscribe, callAnswer{err: err})
	if err != nil {
		return nil
	}
	return errUnsubscribed
}

// unsubscribe asks the server to delete the subscription on this
// partition and waits for its answer. On success the stream ends and the
// run loop stops without subscribing again.
func (pc *partitionConsumer) unsubscribe(ctx context.Context) error {
	_, err := pc.call(ctx, callUnsubscribe, &servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Unsubscribe{Unsubscribe: &servingpb.Unsubscribe{}}})
	return err
}

// hasMore reports whether messages are buffered here or the topic holds an
// entry after the last message handed out (after the subscription's start
// when none was): what a Reader's HasNext asks of each partition.
func (pc *partitionConsumer) hasMore(ctx context.Context) (bool, error) {
	pc.mu.Lock()
	queued := len(pc.mu.queue) > 0
	req := &servingpb.HasMessagesAfter{}
	if pc.mu.last != nil {
		req.After = pc.mu.last.proto()
		if pc.mu.lastIsStart { // the start's own entry counts
			req.After.Entry--
		}
	}
	pc.mu.Unlock()
	if queued {
		return true, nil
	}
	return pc.call(ctx, callHasMessagesAfter, &servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_HasMessagesAfter{HasMessagesAfter: req}})
}

// send sends req on the current stream. A seek first drops the queued
// acks (acks.go).
func (pc *partitionConsumer) send(req *servingpb.ConsumeRequest) error {
	pc.mu.Lock()
	st := pc.mu.stream
	pc.mu.Unlock()
	if st == nil {
		if pc.stopping() {
			return ErrClosed
		}
		return pc.errReconnecting()
	}
	pc.sendMu.Lock()
	defer pc.sendMu.Unlock()
	if req.GetSeek() != nil {
		pc.clearAcksLocked()
	}
	err := st.Send(req)
	if errors.Is(err, io.EOF) {
		return errcode.New(errcode.Unavailable, "consumer stream of %s closed", pc.topic)
	}
	return wireErr(err)
}

func (pc *partitionConsumer) errReconnecting() error {
	return errcode.New(errcode.Unavailable, "consumer of %s is reconnecting", pc.topic)
}

func (pc *partitionConsumer) connected() bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.mu.stream != nil
}

func (pc *partitionConsumer) flow(n int) {
	if n > 0 {
		_ = pc.send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Flow{Flow: &servingpb.Flow{Permits: uint32(n)}}})
	}
}

// push queues received messages. Messages at or before the resume point of a
// non-durable subscription were handed out already: they are dropped and
// their permits granted again. The queue may exceed queueSize by up to one
// entry's batch: the server delivers whole entries and lets the permits go
// negative.
func (pc *partitionConsumer) push(wire []*servingpb.ReceivedMessage) error {
	dropped := 0
	pc.mu.Lock()
	for _, w := range wire {
		m := pc.message(w)
		if pc.nonDurable && pc.mu.last != nil && !pc.mu.last.Less(m.ID) {
			dropped++
			continue
		}
		pc.mu.queue = append(pc.mu.queue, m)
	}
	pc.mu.Unlock()
	pc.flow(dropped)
	pc.parent.wake()
	return nil
}

// message is w as received on the current stream, at its epoch; the
// caller holds mu.
func (pc *partitionConsumer) message(w *servingpb.ReceivedMessage) *Message {
	m := messageFromProto(w, pc.topic, pc.partition)
	m.epoch = pc.mu.epoch
	return m
}

// messageFromProto is the message w of topic (partition's).
func messageFromProto(w *servingpb.ReceivedMessage, topic string, partition int32) *Message {
	m := &Message{
		ID:              idFromProto(w.GetId(), partition),
		Topic:           topic,
		Key:             w.GetKey(),
		Properties:      w.GetProperties(),
		Payload:         w.GetPayload(),
		PublishTime:     time.Unix(0, w.GetPublishTimeUnixNano()),
		ProducerName:    w.GetProducerName(),
		SequenceID:      w.GetSequenceId(),
		RedeliveryCount: w.GetRedeliveryCount(),
	}
	if t := w.GetEventTimeUnixNano(); t != 0 {
		m.EventTime = time.Unix(0, t)
	}
	m.Properties, m.SchemaVersion = takeSchemaVersion(m.Properties)
	m.Encrypted = encrypted(m.Properties) // until a consumer's decryption opens it
	return m
}

// pop hands out the next buffered message and refills the permits once half
// of the queue was taken. It returns the messages still buffered.
func (pc *partitionConsumer) pop() (*Message, int) {
	pc.mu.Lock()
	if len(pc.mu.queue) == 0 {
		pc.mu.Unlock()
		return nil, 0
	}
	m := pc.mu.queue[0]
	pc.mu.queue[0] = nil
	pc.mu.queue = pc.mu.queue[1:]
	id := m.ID
	pc.mu.last, pc.mu.lastIsStart = &id, false
	pc.mu.delivered++
	refill := 0
	if pc.mu.delivered >= max(1, pc.queueSize/2) {
		refill, pc.mu.delivered = pc.mu.delivered, 0
	}
	left := len(pc.mu.queue)
	pc.mu.Unlock()
	pc.flow(refill)
	return m, left
}

// seek sends a Seek and waits for SeekDone; what was buffered before it is
// dropped (its permits granted again).
func (pc *partitionConsumer) seek(ctx context.Context, s *servingpb.Seek) error {
	_, err := pc.call(ctx, callSeek, &servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Seek{Seek: s}})
	if err == nil {
		pc.rememberStart(s)
	}
	return err
}

// call sends req and waits for serve to answer it (pendingCall).
func (pc *partitionConsumer) call(ctx context.Context, kind callKind, req *servingpb.ConsumeRequest) (bool, error) {
	call := &pendingCall{kind: kind, ch: make(chan callAnswer, 1), seekTo: req.GetSeek().GetMessageId()}
	pc.mu.Lock()
	if pc.mu.call != nil {
		pc.mu.Unlock()
		return false, invalidArg("a seek, an unsubscribe or a HasNext is already in progress on %s", pc.topic)
	}
	pc.mu.call = call
	pc.mu.Unlock()
	defer func() {
		pc.mu.Lock()
		if pc.mu.call == call {
			pc.mu.call = nil
		}
		pc.mu.Unlock()
	}()
	if err := pc.send(req); err != nil {
		return false, err
	}
	select {
	case a := <-call.ch:
		return a.yes, a.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// rememberStart makes a non-durable subscription resubscribe at the seek
// target until a message is handed out.
func (pc *partitionConsumer) rememberStart(s *servingpb.Seek) {
	if !pc.nonDurable {
		return
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	sub := proto.CloneOf(pc.mu.sub)
	sub.StartMessageId, sub.StartTimeUnixNano = nil, 0
	switch to := s.GetTo().(type) {
	case *servingpb.Seek_MessageId:
		sub.StartMessageId = to.MessageId
	case *servingpb.Seek_TimeUnixNano:
		sub.StartTimeUnixNano = to.TimeUnixNano
	case *servingpb.Seek_Position:
		sub.InitialPosition = to.Position
	}
	pc.mu.sub = sub
}

// seekDone takes the answer to this consumer's seek: what the stream sends
// from now on is of the cursor epoch the seek made.
func (pc *partitionConsumer) seekDone(epoch uint64) {
	pc.mu.Lock()
	dropped := len(pc.mu.queue)
	pc.mu.queue, pc.mu.last, pc.mu.lastIsStart = nil, nil, false
	pc.mu.epoch = epoch
	// As at open (Consumer.openPart): the server starts a reader at the
	// target's entry, so the messages of its batch before the target are
	// skipped here. Set before serve pushes what the seek delivers.
	if c := pc.mu.call; pc.nonDurable && c != nil && c.kind == callSeek && c.seekTo.GetBatch() > 0 {
		to := c.seekTo
		pc.mu.last = &MessageID{Ledger: to.GetLedger(), Entry: to.GetEntry(), Batch: to.GetBatch() - 1, Partition: pc.partition}
		pc.mu.lastIsStart = true
	}
	pc.mu.Unlock()
	pc.parent.forgetHanded(pc.partition) // what was acknowledged before the target comes again
	pc.flow(dropped)
	pc.answer(callSeek, callAnswer{})
}
