package fakebroker

import (
	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving/servingpb"
	"google.golang.org/grpc"
)

// Produce serves a producer stream.
func (b *Broker) Produce(s grpc.BidiStreamingServer[servingpb.ProduceRequest, servingpb.ProduceResponse]) error {
	first, err := s.Recv()
	if err != nil {
		return err
	}
	open := first.GetOpen()
	if open == nil {
		return errcode.New(errcode.InvalidArgument, "first request must be open")
	}
	b.mu.Lock()
	b.mu.opens = append(b.mu.opens, Open{Topic: open.GetTopic(), Producer: open.GetProducerName()})
	b.mu.Unlock()
	if err := b.checkOwner(open.GetTopic()); err != nil {
		return err
	}
	b.cl.mu.Lock()
	_, err = b.cl.topicLocked(open.GetTopic())
	maxBytes := b.cl.MaxMessageBytes
	b.cl.mu.Unlock()
	if err != nil {
		return err
	}
	if maxBytes == 0 {
		maxBytes = DefaultMaxMessageBytes
	}
	name := open.GetProducerName()
	if name == "" {
		name = b.cl.assignName()
	}
	opened := &servingpb.ProducerOpened{ProducerName: name, LastSequenceId: b.cl.lastSeq(open.GetTopic(), name), MaxMessageBytes: maxBytes}
	if err := s.Send(&servingpb.ProduceResponse{Kind: &servingpb.ProduceResponse_Opened{Opened: opened}}); err != nil {
		return err
	}
	st := b.register(open.GetTopic())
	defer b.unregister(st)
	reqs, errc := recvAll(s.Context(), s.Recv)
	var held []*servingpb.ProduceResponse
	for {
		gate := b.gateOf(&b.mu.receiptGate)
		var released <-chan struct{}
		if gate != nil {
			released = gate
		} else if err := sendAll(s, &held); err != nil {
			return err
		}
		select {
		case err := <-st.kill:
			return err
		case err := <-errc:
			return endOf(err)
		case <-released:
		case r := <-reqs:
			resp, err := b.onBatch(s, st, open.GetTopic(), name, r.GetSend(), maxBytes)
			if err != nil {
				return err
			}
			held = append(held, resp)
		}
	}
}

// sendAll sends the held responses in order.
func sendAll(s grpc.BidiStreamingServer[servingpb.ProduceRequest, servingpb.ProduceResponse], held *[]*servingpb.ProduceResponse) error {
	for _, r := range *held {
		if err := s.Send(r); err != nil {
			return err
		}
	}
	*held = (*held)[:0]
	return nil
}

// onBatch persists a batch and returns its answer (a receipt or an error).
func (b *Broker) onBatch(s grpc.BidiStreamingServer[servingpb.ProduceRequest, servingpb.ProduceResponse], st *stream, topicName, producer string, batch *servingpb.SendBatch, maxBytes uint64) (*servingpb.ProduceResponse, error) {
	msgs, err := batchMessages(batch)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, errcode.New(errcode.InvalidArgument, "empty batch")
	}
	seqs := make([]uint64, len(msgs))
	for i, m := range msgs {
		seqs[i] = m.GetSequenceId()
	}
	b.mu.Lock()
	b.mu.batches = append(b.mu.batches, Batch{Topic: topicName, Producer: producer, Seqs: seqs})
	gate := b.mu.batchGate.ch
	var fail *errcode.Error
	if len(b.mu.failSends) > 0 {
		fail, b.mu.failSends = b.mu.failSends[0], b.mu.failSends[1:]
	}
	b.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case err := <-st.kill:
			return nil, err
		case <-s.Context().Done():
			return nil, s.Context().Err()
		}
	}
	if err := b.checkOwner(topicName); err != nil {
		return nil, err
	}
	first, last := seqs[0], seqs[len(seqs)-1]
	for _, m := range msgs {
		if uint64(len(m.GetPayload())) > maxBytes && fail == nil {
			fail = errcode.New(errcode.MessageTooLarge, "message of %d bytes", len(m.GetPayload()))
		}
	}
	if fail != nil {
		e := &servingpb.SendError{FirstSequenceId: first, LastSequenceId: last, Code: uint32(fail.Code), Message: fail.Message}
		return &servingpb.ProduceResponse{Kind: &servingpb.ProduceResponse_Error{Error: e}}, nil
	}
	r, err := b.cl.persist(topicName, producer, msgs)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	drop := b.mu.dropReceipts > 0
	if drop {
		b.mu.dropReceipts--
	}
	b.mu.Unlock()
	if drop {
		return nil, errcode.New(errcode.Unavailable, "receipt dropped by the test")
	}
	return &servingpb.ProduceResponse{Kind: &servingpb.ProduceResponse_Receipt{Receipt: r}}, nil
}

// batchMessages returns a batch's messages, decompressing and decoding them
// when the producer sent them encoded (as the SDK does).
func batchMessages(batch *servingpb.SendBatch) ([]*servingpb.Message, error) {
	if batch.GetCount() == 0 {
		return batch.GetMessages(), nil
	}
	enc := batch.GetEncoded()
	if c := entry.Compression(batch.GetCompression()); c != entry.CompressionNone {
		var err error
		if enc, err = entry.Decompress(c, enc, int(batch.GetUncompressedSize())); err != nil {
			return nil, errcode.New(errcode.InvalidArgument, "malformed compressed batch: %v", err)
		}
	}
	ems, err := entry.DecodeMessages(enc, int(batch.GetCount()))
	if err != nil {
		return nil, errcode.New(errcode.InvalidArgument, "malformed encoded batch: %v", err)
	}
	msgs := make([]*servingpb.Message, len(ems))
	for i, m := range ems {
		msgs[i] = &servingpb.Message{SequenceId: m.SequenceID, Key: m.Key, Properties: m.Properties, Payload: m.Payload, EventTimeUnixNano: m.EventTime}
	}
	return msgs, nil
}
