package serving_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
	"github.com/strata-mq/strata/serving/servingtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// cluster is a set of nodes sharing in-memory twins of etcd and bookies.
type cluster struct {
	t       *testing.T
	meta    serving.Meta
	ledgers serving.Ledgers
	mem     *servingtest.Meta
	memL    *servingtest.Ledgers
}

func newCluster(t *testing.T) *cluster {
	m := servingtest.NewMeta()
	l := servingtest.NewLedgers(m)
	return &cluster{t: t, meta: m, ledgers: l, mem: m, memL: l}
}

type testNode struct {
	*serving.Node
	addr   string
	srv    *grpc.Server
	client servingpb.BrokerClient
}

func (c *cluster) start(id string, tweak func(*serving.Config)) *testNode {
	t := c.t
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := serving.Config{NodeID: id, GRPCAddr: lis.Addr().String(), CursorFlushInterval: 50 * time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := serving.NewNode(cfg, c.meta, c.ledgers, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return serveNode(t, n, lis)
}

// serveNode serves n on lis over real gRPC with the node's own server
// options, starts it, and dials a client to it. On cleanup it closes the
// client, the server and the node, then each of closers in order.
func serveNode(t testing.TB, n *serving.Node, lis net.Listener, closers ...func() error) *testNode {
	t.Helper()
	return serveNodeWith(t, n, lis, nil, closers...)
}

// serveNodeWith is serveNode with more server options after the node's own.
func serveNodeWith(t testing.TB, n *serving.Node, lis net.Listener, extra []grpc.ServerOption, closers ...func() error) *testNode {
	t.Helper()
	srv := grpc.NewServer(append(n.ServerOptions(), extra...)...)
	n.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		_ = n.Close()
		for _, c := range closers {
			_ = c()
		}
	})
	return &testNode{Node: n, addr: lis.Addr().String(), srv: srv, client: servingpb.NewBrokerClient(conn)}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type prod struct {
	t      *testing.T
	stream grpc.BidiStreamingClient[servingpb.ProduceRequest, servingpb.ProduceResponse]
	opened *servingpb.ProducerOpened
}

func openProducer(t *testing.T, n *testNode, topic, name string) (*prod, error) {
	return openProducerWith(t, n, &servingpb.OpenProducer{Topic: topic, ProducerName: name})
}

func openProducerWith(t *testing.T, n *testNode, open *servingpb.OpenProducer) (*prod, error) {
	s, err := n.client.Produce(ctxT(t))
	if err != nil {
		return nil, err
	}
	if err := s.Send(&servingpb.ProduceRequest{Kind: &servingpb.ProduceRequest_Open{Open: open}}); err != nil {
		return nil, err
	}
	r, err := s.Recv()
	if err != nil {
		return nil, errcode.FromError(err)
	}
	return &prod{t: t, stream: s, opened: r.GetOpened()}, nil
}

// close ends the producer's stream and waits until the node has let it go.
func (p *prod) close() {
	p.t.Helper()
	if err := p.stream.CloseSend(); err != nil {
		p.t.Fatal(err)
	}
	for {
		if _, err := p.stream.Recv(); err != nil {
			return
		}
	}
}

func mustProducer(t *testing.T, n *testNode, topic, name string) *prod {
	t.Helper()
	p, err := openProducer(t, n, topic, name)
	if err != nil {
		t.Fatalf("open producer: %v", err)
	}
	return p
}

func msg(seq uint64) *servingpb.Message {
	return &servingpb.Message{SequenceId: seq, Key: fmt.Sprintf("k%d", seq%7), Payload: payloadOf(seq),
		Properties: map[string]string{"seq": fmt.Sprint(seq)}}
}

func payloadOf(seq uint64) []byte { return []byte(fmt.Sprintf("payload-%06d-\x00\xff", seq)) }

// send sends a batch and waits for its answer.
func (p *prod) send(msgs ...*servingpb.Message) (*servingpb.ProduceResponse, error) {
	return p.sendBatch(&servingpb.SendBatch{Messages: msgs})
}

// sendBatch sends a batch as given and waits for its answer.
func (p *prod) sendBatch(b *servingpb.SendBatch) (*servingpb.ProduceResponse, error) {
	if err := p.stream.Send(&servingpb.ProduceRequest{Kind: &servingpb.ProduceRequest_Send{Send: b}}); err != nil {
		_, err = p.stream.Recv()
		return nil, errcode.FromError(err)
	}
	r, err := p.stream.Recv()
	if err != nil {
		return nil, errcode.FromError(err)
	}
	return r, nil
}

func (p *prod) mustSend(msgs ...*servingpb.Message) *servingpb.SendReceipt {
	p.t.Helper()
	r, err := p.send(msgs...)
	if err != nil {
		p.t.Fatalf("send: %v", err)
	}
	if r.GetReceipt() == nil {
		p.t.Fatalf("send: want a receipt, got %v", r)
	}
	return r.GetReceipt()
}

type cons struct {
	t      *testing.T
	stream grpc.BidiStreamingClient[servingpb.ConsumeRequest, servingpb.ConsumeResponse]
	cancel context.CancelFunc
	epoch  uint64 // the cursor epoch of Subscribed, then of the last SeekDone
}

func subscribe(t *testing.T, n *testNode, sub *servingpb.Subscribe) (*cons, error) {
	ctx, cancel := context.WithCancel(ctxT(t))
	s, err := n.client.Consume(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	if err := s.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Subscribe{Subscribe: sub}}); err != nil {
		cancel()
		return nil, err
	}
	r, err := s.Recv()
	if err != nil {
		cancel()
		return nil, errcode.FromError(err)
	}
	if r.GetSubscribed() == nil {
		cancel()
		return nil, fmt.Errorf("want subscribed, got %v", r)
	}
	return &cons{t: t, stream: s, cancel: cancel, epoch: r.GetSubscribed().GetCursorEpoch()}, nil
}

func mustSubscribe(t *testing.T, n *testNode, sub *servingpb.Subscribe) *cons {
	t.Helper()
	c, err := subscribe(t, n, sub)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return c
}

// subscribeWhenServed subscribes once n serves the topic again (after an
// unload, or once it may take over from an owner that died).
func subscribeWhenServed(t *testing.T, n *testNode, sub *servingpb.Subscribe) *cons {
	t.Helper()
	var c *cons
	eventually(t, "subscribe to "+sub.GetTopic(), func() error {
		var err error
		c, err = subscribe(t, n, sub)
		return err
	})
	return c
}

// seek moves the subscription to sk and waits for the node's SeekDone,
// dropping what it sent before (from the old position).
func (c *cons) seek(sk *servingpb.Seek) {
	c.t.Helper()
	if err := c.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Seek{Seek: sk}}); err != nil {
		c.t.Fatal(err)
	}
	for {
		r, err := c.stream.Recv()
		if err != nil {
			c.t.Fatalf("waiting for SeekDone: %v", err)
		}
		if r.GetSeekDone() != nil {
			c.epoch = r.GetSeekDone().GetCursorEpoch()
			return
		}
	}
}

func (c *cons) flow(n uint32) {
	if err := c.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Flow{Flow: &servingpb.Flow{Permits: n}}}); err != nil {
		c.t.Fatalf("flow: %v", err)
	}
}

func (c *cons) ack(ids ...*servingpb.MessageId) {
	if err := c.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Ack{Ack: &servingpb.Ack{Ids: ids}}}); err != nil {
		c.t.Fatalf("ack: %v", err)
	}
}

// receive reads messages until it has n of them.
func (c *cons) receive(n int) []*servingpb.ReceivedMessage {
	c.t.Helper()
	var out []*servingpb.ReceivedMessage
	for len(out) < n {
		r, err := c.stream.Recv()
		if err != nil {
			c.t.Fatalf("receive after %d of %d: %v", len(out), n, err)
		}
		out = append(out, r.GetMessages().GetMessages()...)
	}
	return out
}
