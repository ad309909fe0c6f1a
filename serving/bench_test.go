package serving_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

// BenchmarkPublishPipelined sends 10 x 1 KiB batches from one producer with
// up to 500 batches in flight, through a real node and three real bookies
// (E/Qw/Qa 3/2/2, fsync'd journals).
func BenchmarkPublishPipelined(b *testing.B) {
	c := newRealCluster(b, 3)
	n := c.startWith("bench", func(*serving.Config) {})
	p, err := n.client.Produce(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Send(&servingpb.ProduceRequest{Kind: &servingpb.ProduceRequest_Open{Open: &servingpb.OpenProducer{Topic: "bench"}}}); err != nil {
		b.Fatal(err)
	}
	if _, err := p.Recv(); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1024)
	done := make(chan error, 1)
	window := make(chan struct{}, 500) // in-flight batches, below the producer limit
	go func() {
		for i := 0; i < b.N; i++ {
			r, err := p.Recv()
			<-window
			if err == nil && r.GetReceipt() == nil {
				err = fmt.Errorf("batch %d: %v", i, r.GetError())
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.SetBytes(10 * 1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		select {
		case window <- struct{}{}:
		case err := <-done:
			b.Fatal(err)
		}
		ms := make([]*servingpb.Message, 10)
		for j := range ms {
			ms[j] = &servingpb.Message{SequenceId: uint64(i*10 + j), Payload: payload}
		}
		if err := p.Send(&servingpb.ProduceRequest{Kind: &servingpb.ProduceRequest_Send{Send: &servingpb.SendBatch{Messages: ms}}}); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
