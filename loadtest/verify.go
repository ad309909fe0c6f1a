package loadtest

import (
	"fmt"
	"math/bits"
	"sync"
)

// Receipt classifies one received message.
type Receipt int

// Receipt values.
const (
	// InOrder is a first receipt at or after every sequence number this
	// consumer has seen from the same producer and partition.
	InOrder Receipt = iota
	// OutOfOrder is a first receipt below one this consumer already saw.
	OutOfOrder
	// Duplicate is a sequence number the subscription already received.
	Duplicate
	// Unexpected is a header naming an unknown producer, a partition or
	// subscription it does not write to, or a sequence number never sent.
	Unexpected
)

func (r Receipt) String() string {
	return [...]string{"in-order", "out-of-order", "duplicate", "unexpected"}[r]
}

// Verification is the verifier's verdict over a whole run.
type Verification struct {
	Published uint64 `json:"messages_published"`
	Acked     uint64 `json:"messages_acked"`
	// Failed sends got an error; Unacked = Published - Acked (failed or
	// still unanswered). Neither counts as lost.
	Failed  uint64 `json:"messages_failed"`
	Unacked uint64 `json:"unacked"`
	// Received counts first receipts, over all subscriptions.
	Received   uint64 `json:"messages_received"`
	Lost       uint64 `json:"lost"`
	Duplicates uint64 `json:"duplicates"`
	OutOfOrder uint64 `json:"out_of_order"`
	Unexpected uint64 `json:"unexpected"`
	// ReceivedUnacked counts first receipts of messages whose send failed or
	// was never acknowledged (allowed: at-least-once on an ambiguous send).
	ReceivedUnacked uint64 `json:"received_unacked"`
}

// OK reports whether nothing acknowledged was lost or reordered and nothing
// unexpected arrived.
func (v Verification) OK() bool {
	return v.Lost == 0 && v.OutOfOrder == 0 && v.Unexpected == 0
}

type streamID struct{ producer, partition uint32 }

type sendState struct {
	topic  int
	next   uint64 // sequence numbers [0, next) were sent
	acked  seqSet
	failed uint64
}

type subStream struct {
	sub    int
	stream streamID
}

type consumerStream struct {
	consumer int
	stream   streamID
	key      string // with OrderPerKey only
}

// Verifier checks delivery per subscription, producer and partition. It is
// safe for concurrent use; all methods are cheap (a map lookup and a bit).
type Verifier struct {
	mu struct {
		sync.Mutex
		partitions int
		producers  map[uint32]int // producer → topic
		subs       map[int]int    // subscription → topic
		topicSubs  map[int][]int  // topic → its subscriptions
		sends      map[streamID]*sendState
		recv       map[subStream]*seqSet
		highest    map[consumerStream]uint64 // highest seq + 1
		perKey     bool
		counts     Verification
		// missing is Missing kept as messages are acknowledged and
		// received, so that a backlog run can poll it without a scan
		// of every bitset under the lock the producers need.
		missing uint64
	}
}

// NewVerifier returns a verifier for topics of the given partition count.
func NewVerifier(partitions int) *Verifier {
	v := &Verifier{}
	v.mu.partitions = partitions
	v.mu.producers = make(map[uint32]int)
	v.mu.subs = make(map[int]int)
	v.mu.topicSubs = make(map[int][]int)
	v.mu.sends = make(map[streamID]*sendState)
	v.mu.recv = make(map[subStream]*seqSet)
	v.mu.highest = make(map[consumerStream]uint64)
	return v
}

// OrderPerKey makes order checked per consumer, producer, partition and
// key, as a key_shared subscription promises it: when a consumer leaves
// or a topic moves, its keys go to others, which then get first receipts
// of those keys below what they already got of other keys.
func (v *Verifier) OrderPerKey() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.mu.perKey = true
}

// AddProducer declares that producer writes to topic (an index).
func (v *Verifier) AddProducer(producer uint32, topic int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.mu.producers[producer] = topic
	for p := range v.mu.partitions {
		v.mu.sends[streamID{producer, uint32(p)}] = &sendState{topic: topic}
	}
}

// AddSubscription declares that sub (an index unique in the run) reads
// topic: it must receive every acknowledged message of topic's producers.
// Declare it before the topic's first acknowledgement, which Missing
// would otherwise not count for it.
func (v *Verifier) AddSubscription(sub, topic int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.mu.subs[sub] = topic
	v.mu.topicSubs[topic] = append(v.mu.topicSubs[topic], sub)
}

// Sent records a send before it leaves. Sequence numbers must be gap-free
// per producer and partition; Sent returns an error (a bug in the caller)
// otherwise.
func (v *Verifier) Sent(h Header) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.mu.sends[streamID{h.Producer, h.Partition}]
	if s == nil {
		return fmt.Errorf("loadtest: send from undeclared producer %d partition %d", h.Producer, h.Partition)
	}
	if h.Seq != s.next {
		return fmt.Errorf("loadtest: producer %d partition %d sent seq %d, want %d", h.Producer, h.Partition, h.Seq, s.next)
	}
	s.next++
	v.mu.counts.Published++
	return nil
}

// Unsent takes back the last Sent of h's producer and partition: the
// message never left (the send was refused before reaching the broker),
// so its sequence number is reused. It returns an error if h is not the
// last sent.
func (v *Verifier) Unsent(h Header) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.mu.sends[streamID{h.Producer, h.Partition}]
	if s == nil || s.next == 0 || h.Seq != s.next-1 || s.acked.has(h.Seq) {
		return fmt.Errorf("loadtest: unsent seq %d of producer %d partition %d is not its last send", h.Seq, h.Producer, h.Partition)
	}
	s.next--
	v.mu.counts.Published--
	return nil
}

// Acked records the broker's acknowledgement of a send.
func (v *Verifier) Acked(h Header) { v.settle(h, true) }

// Failed records that a send got an error instead of an acknowledgement.
func (v *Verifier) Failed(h Header) { v.settle(h, false) }

func (v *Verifier) settle(h Header, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.mu.sends[streamID{h.Producer, h.Partition}]
	if s == nil || h.Seq >= s.next {
		return
	}
	if !ok {
		s.failed++
		v.mu.counts.Failed++
		return
	}
	if !s.acked.add(h.Seq) {
		return
	}
	v.mu.counts.Acked++
	id := streamID{h.Producer, h.Partition}
	for _, sub := range v.mu.topicSubs[s.topic] {
		// A message can arrive before its acknowledgement does; it is
		// then not missing for the subscriptions that already have it.
		if !v.mu.recv[subStream{sub, id}].has(h.Seq) {
			v.mu.missing++
		}
	}
}

// Received records that consumer (an index unique in the run) of sub got
// the message with header h and key, and classifies it.
func (v *Verifier) Received(sub, consumer int, h Header, msgKey string) Receipt {
	v.mu.Lock()
	defer v.mu.Unlock()
	id := streamID{h.Producer, h.Partition}
	s := v.mu.sends[id]
	topic, subOK := v.mu.subs[sub]
	if s == nil || !subOK || s.topic != topic || h.Seq >= s.next {
		v.mu.counts.Unexpected++
		return Unexpected
	}
	key := subStream{sub, id}
	got := v.mu.recv[key]
	if got == nil {
		got = &seqSet{}
		v.mu.recv[key] = got
	}
	if !got.add(h.Seq) {
		v.mu.counts.Duplicates++
		return Duplicate
	}
	v.mu.counts.Received++
	if s.acked.has(h.Seq) {
		v.mu.missing--
	} else {
		v.mu.counts.ReceivedUnacked++
	}
	cs := consumerStream{consumer: consumer, stream: id}
	if v.mu.perKey {
		cs.key = msgKey
	}
	if hi := v.mu.highest[cs]; h.Seq+1 < hi {
		v.mu.counts.OutOfOrder++
		return OutOfOrder
	}
	v.mu.highest[cs] = h.Seq + 1
	return InOrder
}

// Missing returns how many acknowledged messages some subscription has not
// received yet, counting a message once per subscription that lacks it
// (what Lost would be if the run ended now). It is kept as messages come
// and go, so it costs no more than a lock.
func (v *Verifier) Missing() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.mu.missing
}

// Snapshot returns the counts so far, with Lost the running count of
// Missing: as cheap as Missing, for figures taken during a run.
func (v *Verifier) Snapshot() Verification {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := v.mu.counts
	r.Lost = v.mu.missing
	r.Unacked = r.Published - r.Acked
	return r
}

// recountMissingLocked counts Missing again from the bitsets: the verdict
// takes it from there rather than trust the running count.
func (v *Verifier) recountMissingLocked() uint64 {
	var n uint64
	for sub, topic := range v.mu.subs {
		for id, s := range v.mu.sends {
			if s.topic != topic {
				continue
			}
			n += s.acked.countNotIn(v.mu.recv[subStream{sub, id}])
		}
	}
	return n
}

// Report returns the verdict so far; Lost counts acknowledged messages not
// received yet, so call it once consumers have drained.
func (v *Verifier) Report() Verification {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := v.mu.counts
	r.Lost = v.recountMissingLocked()
	r.Unacked = r.Published - r.Acked
	return r
}

// seqSet is a growable bitset of sequence numbers. Its size is bounded by
// the number of messages sent, because callers only add sequence numbers
// below a stream's next.
type seqSet struct{ words []uint64 }

// add inserts seq and reports whether it was absent.
func (s *seqSet) add(seq uint64) bool {
	w := seq / 64
	for uint64(len(s.words)) <= w {
		s.words = append(s.words, 0)
	}
	bit := uint64(1) << (seq % 64)
	if s.words[w]&bit != 0 {
		return false
	}
	s.words[w] |= bit
	return true
}

// has reports whether seq is a member; a nil set (a subscription that has
// received nothing of a stream) has none.
func (s *seqSet) has(seq uint64) bool {
	if s == nil {
		return false
	}
	w := seq / 64
	return w < uint64(len(s.words)) && s.words[w]&(uint64(1)<<(seq%64)) != 0
}

// countNotIn counts the members of s absent from o (o may be nil).
func (s *seqSet) countNotIn(o *seqSet) uint64 {
	var n int
	for i, w := range s.words {
		if o != nil && i < len(o.words) {
			w &^= o.words[i]
		}
		n += bits.OnesCount64(w)
	}
	return uint64(n)
}

// Garbled records a received payload without a loadtest header; it counts
// as Unexpected.
func (v *Verifier) Garbled() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.mu.counts.Unexpected++
}
