package client

import (
	"context"
	"testing"
	"time"

	"github.com/strata-mq/strata/client/fakebroker"
	"github.com/strata-mq/strata/serving/servingpb"
)

// stuckStream is a producer stream whose Recv ends only when released: a
// stream that cancelling its context does not end.
type stuckStream struct {
	produceStream
	release chan struct{}
}

func (s *stuckStream) Recv() (*servingpb.ProduceResponse, error) {
	<-s.release
	return nil, errStreamEnded
}

// servedWithin runs serve on st for a closed producer and reports whether it
// returned within d.
func servedWithin(p *partitionProducer, st produceStream, d time.Duration) bool {
	p.cancel() // the send loop returns at once; serve then waits for Recv
	done := make(chan struct{})
	go func() {
		_ = p.serve(st)
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func TestProducerNeverWaitsForeverOnAStreamItAbandoned(t *testing.T) {
	cl := fakebroker.NewCluster()
	b := fakebroker.Start(t, cl)
	const topic = "public/default/t"
	if err := cl.CreateTopic(topic, 0); err != nil {
		t.Fatal(err)
	}
	c, err := New(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	cfg := defaultProducerConfig()
	newProducer := func() *partitionProducer {
		p := newPartitionProducer(c, &cfg, topic, 0, "p")
		p.recvEndGrace = 50 * time.Millisecond
		p.mu.addr = b.Addr
		return p
	}

	t.Run("a stream its cancel does not reach ends with the node's connection", func(t *testing.T) {
		bc, err := c.broker(b.Addr)
		if err != nil {
			t.Fatal(err)
		}
		// Opened on a context the producer's cancel does not end.
		s, err := bc.Produce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		open := &servingpb.ProduceRequest{Kind: &servingpb.ProduceRequest_Open{Open: &servingpb.OpenProducer{Topic: topic, ProducerName: "p"}}}
		if err := sendOn(s, open); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		if !servedWithin(newProducer(), &cancelStream{produceStream: s, cancel: func() {}}, 10*time.Second) {
			t.Fatal("the producer still waits for a stream whose connection it closed")
		}
		c.mu.Lock()
		_, cached := c.mu.conns[b.Addr]
		c.mu.Unlock()
		if cached {
			t.Fatal("the connection to the node is still cached")
		}
	})

	t.Run("a stream nothing ends is abandoned", func(t *testing.T) {
		st := &stuckStream{release: make(chan struct{})}
		defer close(st.release)
		if !servedWithin(newProducer(), &cancelStream{produceStream: st, cancel: func() {}}, 10*time.Second) {
			t.Fatal("the producer still waits for a stream whose Recv never ends")
		}
	})
}
