package client

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Chunking splits a message larger than the topic's message size limit
// into chunks, each a message of its own, and puts it together again on
// the consumer, as Pulsar's chunking does (ProducerChunking). The chunks
// of one message go to one partition, in order, one after the other in
// the producer's sequence (other producers' messages may fall between
// them). Each carries the message's key, event time and properties, and
// these reserved properties:
const (
	chunkUUIDProperty  = "__strata_chunk_uuid"  // the same on every chunk of a message
	chunkIndexProperty = "__strata_chunk_index" // 0 .. count-1
	chunkCountProperty = "__strata_chunk_count"
	chunkBytesProperty = "__strata_chunk_bytes" // the whole payload's length
)

// Bounds of a consumer's chunked messages being put together.
const (
	// maxPendingChunked is how many chunked messages a consumer puts
	// together at once (Pulsar's maxPendingChunkedMessage); past it the
	// oldest is given back (nacked) to come again later.
	maxPendingChunked = 100
	// expireIncompleteChunked is how long a chunked message may wait for
	// its next chunk before it is dropped and its chunks acknowledged: its
	// producer failed part way, and its send failed with it (Pulsar's
	// expireTimeOfIncompleteChunkedMessage).
	expireIncompleteChunked = time.Minute
)

// enqueueChunked queues m as chunks of at most chunkBytes (the topic's
// limit when 0 or above it), or whole when it fits. cb is called once,
// when the last chunk is resolved, with the first chunk's id (where a
// Seek to the message goes) or the first error. It answers an error only
// when no chunk was queued (the caller then calls cb).
func (p *partitionProducer) enqueueChunked(ctx context.Context, m *ProducerMessage, chunkBytes int, cb func(MessageID, *ProducerMessage, error)) error {
	p.mu.Lock()
	maxBytes := p.mu.maxMsgBytes
	p.mu.Unlock()
	if maxBytes > 0 && (chunkBytes <= 0 || chunkBytes > maxBytes) {
		chunkBytes = maxBytes
	}
	if chunkBytes <= 0 || len(m.Payload) <= chunkBytes {
		return p.enqueue(ctx, m, cb)
	}
	n := (len(m.Payload) + chunkBytes - 1) / chunkBytes
	agg := &chunkedSend{msg: m, cb: cb, left: n}
	id, count, total := uuid.NewString(), strconv.Itoa(n), strconv.Itoa(len(m.Payload))
	for i := range n {
		props := make(map[string]string, len(m.Properties)+4)
		maps.Copy(props, m.Properties)
		props[chunkUUIDProperty], props[chunkIndexProperty] = id, strconv.Itoa(i)
		props[chunkCountProperty], props[chunkBytesProperty] = count, total
		chunk := &ProducerMessage{Key: m.Key, Properties: props, EventTime: m.EventTime,
			DeliverAt: m.DeliverAt, DeliverAfter: m.DeliverAfter,
			Payload: m.Payload[i*chunkBytes : min(len(m.Payload), (i+1)*chunkBytes)]}
		if err := p.enqueue(ctx, chunk, agg.done(i)); err != nil {
			if i == 0 {
				return err
			}
			// The chunks queued are written; the message is incomplete,
			// and consumers drop what they got of it.
			agg.resolve(n-i, err)
			return nil
		}
	}
	return nil
}

// chunkedSend gathers the outcomes of one message's chunks.
type chunkedSend struct {
	msg *ProducerMessage
	cb  func(MessageID, *ProducerMessage, error)

	mu    sync.Mutex
	left  int
	first MessageID
	err   error
}

// done is the send callback of chunk i.
func (s *chunkedSend) done(i int) func(MessageID, *ProducerMessage, error) {
	return func(id MessageID, _ *ProducerMessage, err error) {
		if i == 0 && err == nil {
			s.mu.Lock()
			s.first = id
			s.mu.Unlock()
		}
		s.resolve(1, err)
	}
}

// resolve counts n chunks resolved with err (nil: acknowledged) and calls the
// callback once every chunk is.
func (s *chunkedSend) resolve(n int, err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.left -= n
	done, id, first := s.left == 0, s.first, s.err
	s.mu.Unlock()
	if done && s.cb != nil {
		if first != nil {
			s.cb(MessageID{}, s.msg, first)
			return
		}
		s.cb(id, s.msg, nil)
	}
}

// chunkAssembler puts chunked messages together on a consumer. It keeps
// the ids of the chunks of each message handed out, so that acks and nacks
// of the message reach every chunk.
type chunkAssembler struct {
	mu       sync.Mutex
	partials map[string]*partialChunked // by chunk uuid
	handed   map[MessageID][]MessageID  // first chunk's id → every chunk's
}

type partialChunked struct {
	first  *Message
	ids    []MessageID
	parts  [][]byte
	count  int
	bytes  int
	last   time.Time // when the last chunk came
	expiry time.Duration
}

// isChunk reports whether m is a chunk of a larger message.
func isChunk(m *Message) bool {
	_, ok := m.Properties[chunkUUIDProperty]
	return ok
}

// assemble takes in chunk m and answers the whole message once its last
// chunk came (nil before). Chunks that cannot be put together are given
// back (nack, a gap: they come again in order) or acknowledged (a message
// whose producer gave up part way, which can never be whole).
func (c *Consumer) assemble(m *Message) *Message {
	whole, ack, nack := c.chunks.add(m, time.Now(), !c.tmpl.GetNonDurable())
	if len(nack) > 0 {
		_ = c.nackNow(nack...) // of one partition: a message's chunks are
	}
	for _, id := range ack {
		_ = c.ack(id, m.epoch, false)
	}
	return whole
}

// add takes in chunk m at now: it answers the whole message once its last
// chunk came, and the chunks to acknowledge and to give back. With track
// it keeps the whole message's chunk ids for its ack (not on a reader,
// which does not ack). A message whose chunk properties do not parse is
// answered as it is.
func (a *chunkAssembler) add(m *Message, now time.Time, track bool) (whole *Message, ack, nack []MessageID) {
	idx, err1 := strconv.Atoi(m.Properties[chunkIndexProperty])
	count, err2 := strconv.Atoi(m.Properties[chunkCountProperty])
	total, err3 := strconv.Atoi(m.Properties[chunkBytesProperty])
	key := m.Properties[chunkUUIDProperty]
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.partials == nil {
		a.partials = map[string]*partialChunked{}
	}
	for k, p := range a.partials { // lazily: producers that died part way
		if now.Sub(p.last) >= p.expiry {
			ack = append(ack, p.ids...)
			delete(a.partials, k)
		}
	}
	if err1 != nil || err2 != nil || err3 != nil || idx < 0 || count < 1 || idx >= count || total < 0 {
		return m, ack, nack // not a chunk this SDK wrote
	}
	p := a.partials[key]
	switch {
	case idx == 0: // a first chunk, or its redelivery: start again
		if p == nil && len(a.partials) >= maxPendingChunked {
			oldest := ""
			for k, q := range a.partials {
				if oldest == "" || q.last.Before(a.partials[oldest].last) {
					oldest = k
				}
			}
			nack = append(nack, a.partials[oldest].ids...)
			delete(a.partials, oldest)
		}
		p = &partialChunked{first: m, count: count, expiry: expireIncompleteChunked}
		a.partials[key] = p
	case p == nil: // its first chunk was skipped (a reset, a TTL): never whole
		ack = append(ack, m.ID)
		return nil, ack, nack
	case idx < len(p.parts): // a chunk met again: already held
		return nil, ack, nack
	case idx > len(p.parts) || count != p.count: // a gap: give back, to come again in order
		nack = append(append(nack, p.ids...), m.ID)
		delete(a.partials, key)
		return nil, ack, nack
	}
	p.ids, p.parts, p.bytes, p.last = append(p.ids, m.ID), append(p.parts, m.Payload), p.bytes+len(m.Payload), now
	if len(p.parts) < p.count {
		return nil, ack, nack
	}
	delete(a.partials, key)
	if p.bytes != total {
		ack = append(ack, p.ids...) // corrupt: never whole
		return nil, ack, nack
	}
	w := *p.first
	w.Payload = slices.Concat(p.parts...)
	w.Properties = maps.Clone(p.first.Properties)
	for _, k := range []string{chunkUUIDProperty, chunkIndexProperty, chunkCountProperty, chunkBytesProperty} {
		delete(w.Properties, k)
	}
	if track {
		if a.handed == nil {
			a.handed = map[MessageID][]MessageID{}
		}
		a.handed[w.ID] = p.ids
	}
	return &w, ack, nack
}

// chunkIDs answers the ids of the chunks of the message with id (id alone
// when it is not a chunked message), forgetting them when done is set.
func (a *chunkAssembler) chunkIDs(id MessageID, done bool) []MessageID {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids, ok := a.handed[id]
	if !ok {
		return []MessageID{id}
	}
	if done {
		delete(a.handed, id)
	}
	return ids
}

// reassembles reports whether c puts chunks together: not on Shared and
// KeyShared subscriptions, where a message's chunks may go to several
// consumers; those receive the chunks as they are.
func (c *Consumer) reassembles() bool { return c.subType != Shared && c.subType != KeyShared }
