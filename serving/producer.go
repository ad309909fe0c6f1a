package serving

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving/servingpb"
)

// producer is one connected producer stream.
type producer struct {
	name string
	t    *topic
	// out carries responses to the stream's sender goroutine. Its capacity
	// is twice the pending limit: at most MaxPendingPerProducer receipts
	// plus as many errors; a producer that overflows it is failed.
	out     chan *servingpb.ProduceResponse
	pending atomic.Int64 // accepted batches whose receipt is not yet sent
	// queueFull is set once a batch was refused as PRODUCER_QUEUE_FULL:
	// every later batch of the stream is refused too (publish). Only the
	// stream's receive goroutine uses it.
	queueFull bool
	done      chan struct{}
	once      sync.Once
	err       error
	// schemaVersion is what its messages carry, in decimal ("": none);
	// set before its batches are read.
	schemaVersion string
}

func newProducer(t *topic, name string, maxPending int) *producer {
	return &producer{name: name, t: t, out: make(chan *servingpb.ProduceResponse, 2*maxPending), done: make(chan struct{})}
}

// fail ends the producer's stream with err.
func (p *producer) fail(err error) {
	p.once.Do(func() {
		p.err = err
		close(p.done)
	})
}

func (p *producer) enqueue(r *servingpb.ProduceResponse) {
	select {
	case p.out <- r:
	default:
		p.fail(errcode.New(errcode.ProducerQueueFull, "producer %s: response queue full", p.name))
	}
}

// notify sends r only when the response queue is empty, so that it never
// takes the room kept for receipts and errors: for notices the next one
// repeats (Throttled).
func (p *producer) notify(r *servingpb.ProduceResponse) {
	if len(p.out) > 0 {
		return
	}
	select {
	case p.out <- r:
	default:
	}
}

func (p *producer) receipt(b *pendingBatch, r receipt, duplicate bool) {
	p.enqueue(&servingpb.ProduceResponse{Kind: &servingpb.ProduceResponse_Receipt{Receipt: &servingpb.SendReceipt{
		FirstSequenceId: b.first, LastSequenceId: b.last,
		Ledger: uint64(r.pos.Ledger), Entry: int64(r.pos.Entry),
		PublishTimeUnixNano: r.publishTime, Duplicate: duplicate,
	}}})
}

func (p *producer) sendError(first, last uint64, err error) {
	p.t.n.m.sendErrors.WithLabelValues(errcode.CodeOf(err).String()).Inc()
	p.enqueue(&servingpb.ProduceResponse{Kind: &servingpb.ProduceResponse_Error{Error: &servingpb.SendError{
		FirstSequenceId: first, LastSequenceId: last, Code: uint32(errcode.CodeOf(err)), Message: err.Error(),
	}}})
}

// pendingBatch is one accepted batch on its way to the ledger.
type pendingBatch struct {
	p           *producer
	first, last uint64
	msgs        []entry.Message
	sent        *sentEncoding // msgs as the producer encoded them; nil: encode here
	received    time.Time
	// set when appended
	batch *entry.Batch
	size  int
}

// sentEncoding is a batch's messages as the producer sent them: their
// AppendMessage encodings, compressed with codec to bytes when codec is
// not none (size is then their length uncompressed).
type sentEncoding struct {
	bytes []byte
	codec entry.Compression
	size  int
}

func toEntryMessages(ms []*servingpb.Message) []entry.Message {
	out := make([]entry.Message, len(ms))
	for i, m := range ms {
		out[i] = entry.Message{SequenceID: m.GetSequenceId(), Key: m.GetKey(), Properties: m.GetProperties(),
			Payload: m.GetPayload(), EventTime: m.GetEventTimeUnixNano()}
	}
	return out
}

// entrySize is the size of b's entry with publish time pt.
func (b *pendingBatch) entrySize(pt int64) int {
	switch {
	case b.sent != nil && b.sent.codec != entry.CompressionNone:
		return entry.CompressedEntrySize(b.p.name, pt, len(b.msgs), b.sent.size, len(b.sent.bytes))
	case b.sent != nil:
		return entry.EntrySize(b.p.name, pt, len(b.msgs), len(b.sent.bytes))
	}
	return entry.Size(&entry.Batch{ProducerName: b.p.name, PublishTime: pt, Messages: b.msgs})
}
