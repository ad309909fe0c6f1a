package fakebroker

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Batch is a batch a broker received.
type Batch struct {
	Topic    string
	Producer string
	Seqs     []uint64
}

// Open is a producer open a broker received.
type Open struct {
	Topic    string
	Producer string // as requested ("" when the server assigns)
}

// Broker is one fake serving node.
type Broker struct {
	servingpb.UnimplementedBrokerServer

	// Addr is the node's host:port.
	Addr string
	cl   *Cluster
	srv  *grpc.Server

	mu struct {
		sync.Mutex
		batchGate     gate // batches wait at it
		receiptGate   gate // receipts wait at it
		subscribeGate gate // consumer subscribes wait at it, unanswered
		dropReceipts  int  // persist, then break the stream instead of answering
		failSends     []*errcode.Error
		streams       map[*stream]struct{}
		batches       []Batch
		opens         []Open
		flows         []uint32
		acks          []*servingpb.MessageId
		subscribes    []*servingpb.Subscribe
		consumeLog    []StreamRequest
		consumes      int // consume streams opened
	}
}

// StreamRequest is a request one of a broker's consume streams received.
type StreamRequest struct {
	Stream int // the broker's consume streams count from 1, in the order they opened
	Req    *servingpb.ConsumeRequest
}

// gate holds what waits at it between hold and release; the broker's mu
// guards it.
type gate struct{ ch chan struct{} } // nil: open

func (g *gate) hold() {
	if g.ch == nil {
		g.ch = make(chan struct{})
	}
}

func (g *gate) release() {
	if g.ch != nil {
		close(g.ch)
		g.ch = nil
	}
}

type stream struct {
	topic string
	kill  chan error // capacity 1
}

// Start serves a new broker of cl on 127.0.0.1:0 until the test ends. The
// first broker started is the default owner of every topic.
func Start(t testing.TB, cl *Cluster) *Broker {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &Broker{Addr: lis.Addr().String(), cl: cl}
	b.mu.streams = map[*stream]struct{}{}
	b.srv = grpc.NewServer(grpc.ChainUnaryInterceptor(errcode.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(errcode.StreamServerInterceptor()))
	servingpb.RegisterBrokerServer(b.srv, b)
	cl.mu.Lock()
	if cl.defaultAddr == "" {
		cl.defaultAddr = b.Addr
	}
	cl.brokers = append(cl.brokers, b)
	cl.mu.Unlock()
	done := make(chan struct{})
	go func() { defer close(done); _ = b.srv.Serve(lis) }()
	t.Cleanup(func() { b.srv.Stop(); <-done })
	return b
}

// URL returns strata://addr.
func (b *Broker) URL() string { return "strata://" + b.Addr }

// HoldBatches makes batches wait (unpersisted) until ReleaseBatches.
func (b *Broker) HoldBatches() { b.withGate(&b.mu.batchGate, (*gate).hold) }

// ReleaseBatches lets held batches go on.
func (b *Broker) ReleaseBatches() { b.withGate(&b.mu.batchGate, (*gate).release) }

// HoldReceipts persists batches but holds their receipts until
// ReleaseReceipts.
func (b *Broker) HoldReceipts() { b.withGate(&b.mu.receiptGate, (*gate).hold) }

// ReleaseReceipts sends the held receipts, in order.
func (b *Broker) ReleaseReceipts() { b.withGate(&b.mu.receiptGate, (*gate).release) }

// HoldSubscribes makes consumer subscribes wait, recorded (Subscribes) and
// unanswered, until ReleaseSubscribes: the consumer stays reconnecting.
func (b *Broker) HoldSubscribes() { b.withGate(&b.mu.subscribeGate, (*gate).hold) }

// ReleaseSubscribes lets held subscribes go on.
func (b *Broker) ReleaseSubscribes() { b.withGate(&b.mu.subscribeGate, (*gate).release) }

func (b *Broker) withGate(g *gate, f func(*gate)) {
	b.mu.Lock()
	f(g)
	b.mu.Unlock()
}

// gateOf is g's channel now (nil when g is open).
func (b *Broker) gateOf(g *gate) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return g.ch
}

// DropReceipts makes the next n batches persist and then break their stream
// (UNAVAILABLE) instead of answering: the producer must resend them.
func (b *Broker) DropReceipts(n int) {
	b.mu.Lock()
	b.mu.dropReceipts = n
	b.mu.Unlock()
}

// FailNextSend answers the next batch with a per-batch SendError of err.
func (b *Broker) FailNextSend(err *errcode.Error) {
	b.mu.Lock()
	b.mu.failSends = append(b.mu.failSends, err)
	b.mu.Unlock()
}

// BreakStreams ends every open stream with err.
func (b *Broker) BreakStreams(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.mu.streams {
		select {
		case s.kill <- err:
		default:
		}
	}
}

// MoveTopic makes to the owner of topicName and ends the topic's streams on
// every other broker with NOT_OWNER and a redirect to it.
func (c *Cluster) MoveTopic(topicName string, to *Broker) {
	c.SetOwner(topicName, to.Addr)
	c.mu.Lock()
	brokers := append([]*Broker(nil), c.brokers...)
	c.mu.Unlock()
	for _, b := range brokers {
		if b == to {
			continue
		}
		b.mu.Lock()
		for s := range b.mu.streams {
			if s.topic == topicName {
				select {
				case s.kill <- &errcode.Error{Code: errcode.NotOwner, Message: "moved", Redirect: to.Addr}:
				default:
				}
			}
		}
		b.mu.Unlock()
	}
}

// Batches returns the batches received so far.
func (b *Broker) Batches() []Batch {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Batch(nil), b.mu.batches...)
}

// Opens returns the producer opens received so far.
func (b *Broker) Opens() []Open {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Open(nil), b.mu.opens...)
}

// Flows returns the flow permits received so far, in order.
func (b *Broker) Flows() []uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]uint32(nil), b.mu.flows...)
}

// Acks returns the acknowledged ids received so far.
func (b *Broker) Acks() []*servingpb.MessageId {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*servingpb.MessageId(nil), b.mu.acks...)
}

// ConsumeLog returns the requests the broker's consume streams received so
// far (subscribes included), in the order they came.
func (b *Broker) ConsumeLog() []StreamRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]StreamRequest(nil), b.mu.consumeLog...)
}

// logConsume records req, received on consume stream n.
func (b *Broker) logConsume(n int, req *servingpb.ConsumeRequest) {
	b.mu.Lock()
	b.mu.consumeLog = append(b.mu.consumeLog, StreamRequest{Stream: n, Req: req})
	b.mu.Unlock()
}

// Subscribes returns the subscribe requests received so far.
func (b *Broker) Subscribes() []*servingpb.Subscribe {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*servingpb.Subscribe(nil), b.mu.subscribes...)
}

func (b *Broker) register(topicName string) *stream {
	s := &stream{topic: topicName, kill: make(chan error, 1)}
	b.mu.Lock()
	b.mu.streams[s] = struct{}{}
	b.mu.Unlock()
	return s
}

func (b *Broker) unregister(s *stream) {
	b.mu.Lock()
	delete(b.mu.streams, s)
	b.mu.Unlock()
}

// checkOwner fails with NOT_OWNER and a redirect unless b owns topicName.
func (b *Broker) checkOwner(topicName string) error {
	if o := b.cl.ownerOf(topicName); o != b.Addr {
		return &errcode.Error{Code: errcode.NotOwner, Message: "not the owner", Redirect: o}
	}
	return nil
}

// recvAll pumps s.Recv into a channel until the stream ends.
func recvAll[Req any](ctx context.Context, recv func() (*Req, error)) (<-chan *Req, <-chan error) {
	reqs := make(chan *Req)
	errc := make(chan error, 1)
	go func() {
		for {
			r, err := recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case reqs <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return reqs, errc
}

func endOf(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// Lookup answers the topic's owner.
func (b *Broker) Lookup(_ context.Context, req *servingpb.LookupRequest) (*servingpb.LookupResponse, error) {
	return &servingpb.LookupResponse{Owner: b.cl.ownerOf(req.GetTopic()), NodeId: "fake"}, nil
}
