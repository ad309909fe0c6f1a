package fakebroker

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/serving/servingpb"
)

// DefaultMaxMessageBytes is the max message size the fake announces.
const DefaultMaxMessageBytes = 1 << 20

// Cluster is the state shared by fake brokers.
type Cluster struct {
	mu          sync.Mutex
	meta        map[string]int // created topics → partitions (0: not partitioned)
	topics      map[string]*topicState
	owners      map[string]string // topic → broker address
	defaultAddr string
	policies    map[string]*servingpb.NamespacePolicy
	nextName    int
	changed     chan struct{} // closed and replaced on every append or cursor move
	brokers     []*Broker
	// MaxMessageBytes is announced to producers (DefaultMaxMessageBytes when 0).
	MaxMessageBytes uint64
}

type topicState struct {
	msgs      []*servingpb.ReceivedMessage
	entries   int64
	producers map[string]*producerState
	subs      map[string]*subState
}

type producerState struct {
	lastSeq  int64
	receipts map[uint64]*servingpb.SendReceipt // by last sequence id
}

type subState struct {
	typ   servingpb.SubscriptionType
	acked map[int]bool
}

// NewCluster returns an empty cluster.
func NewCluster() *Cluster {
	return &Cluster{
		meta: map[string]int{}, topics: map[string]*topicState{}, owners: map[string]string{},
		policies: map[string]*servingpb.NamespacePolicy{}, changed: make(chan struct{}),
	}
}

// CreateTopic creates a topic with n partitions (0: not partitioned).
func (c *Cluster) CreateTopic(name string, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.createLocked(name, n)
}

func (c *Cluster) createLocked(name string, n int) error {
	tn, err := topic.Parse(name)
	if err != nil {
		return err
	}
	if _, ok := c.meta[tn.String()]; ok {
		return errcode.New(errcode.TopicExists, "topic %s exists", tn)
	}
	c.meta[tn.String()] = n
	if n == 0 {
		c.topics[tn.String()] = newTopicState()
	}
	for i := range n {
		c.topics[tn.Partition(i).String()] = newTopicState()
	}
	return nil
}

func newTopicState() *topicState {
	return &topicState{producers: map[string]*producerState{}, subs: map[string]*subState{}}
}

// SetOwner makes addr the owner of topic (a partition name for a
// partitioned topic).
func (c *Cluster) SetOwner(topicName, addr string) {
	c.mu.Lock()
	c.owners[topicName] = addr
	c.mu.Unlock()
}

func (c *Cluster) ownerOf(topicName string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o, ok := c.owners[topicName]; ok {
		return o
	}
	return c.defaultAddr
}

// Messages returns a copy of topic's log.
func (c *Cluster) Messages(topicName string) []*servingpb.ReceivedMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.topics[topicName]
	if t == nil {
		return nil
	}
	return append([]*servingpb.ReceivedMessage(nil), t.msgs...)
}

// Publish appends messages directly to topic's log (as producer "direct").
func (c *Cluster) Publish(topicName string, payloads ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.topics[topicName]
	for _, p := range payloads {
		c.appendLocked(t, "direct", []*servingpb.Message{{Payload: []byte(p)}})
	}
}

func (c *Cluster) topicLocked(name string) (*topicState, error) {
	t := c.topics[name]
	if t == nil {
		return nil, errcode.New(errcode.TopicNotFound, "topic %s not found", name)
	}
	return t, nil
}

func (c *Cluster) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Cluster) assignName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextName++
	return fmt.Sprintf("fake-producer-%d", c.nextName)
}

func (c *Cluster) lastSeq(topicName, producer string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.topics[topicName]
	if t == nil || t.producers[producer] == nil {
		return -1
	}
	return t.producers[producer].lastSeq
}

// persist appends a batch as one entry, or answers a resend with its original
// receipt.
func (c *Cluster) persist(topicName, producer string, msgs []*servingpb.Message) (*servingpb.SendReceipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.topicLocked(topicName)
	if err != nil {
		return nil, err
	}
	ps := t.producers[producer]
	last := msgs[len(msgs)-1].GetSequenceId()
	if ps != nil && int64(last) <= ps.lastSeq {
		r, ok := ps.receipts[last]
		if !ok {
			r = &servingpb.SendReceipt{FirstSequenceId: msgs[0].GetSequenceId(), LastSequenceId: last}
		}
		dup := proto.CloneOf(r)
		dup.Duplicate = true
		return dup, nil
	}
	return c.appendLocked(t, producer, msgs), nil
}

func (c *Cluster) appendLocked(t *topicState, producer string, msgs []*servingpb.Message) *servingpb.SendReceipt {
	now := time.Now().UnixNano()
	entry := t.entries
	t.entries++
	for i, m := range msgs {
		t.msgs = append(t.msgs, &servingpb.ReceivedMessage{
			Id: &servingpb.MessageId{Ledger: 1, Entry: entry, Batch: int32(i)}, Key: m.GetKey(), Properties: m.GetProperties(),
			Payload: m.GetPayload(), PublishTimeUnixNano: now, EventTimeUnixNano: m.GetEventTimeUnixNano(),
			ProducerName: producer, SequenceId: m.GetSequenceId(),
		})
	}
	r := &servingpb.SendReceipt{FirstSequenceId: msgs[0].GetSequenceId(), LastSequenceId: msgs[len(msgs)-1].GetSequenceId(),
		Ledger: 1, Entry: entry, PublishTimeUnixNano: now}
	ps := t.producers[producer]
	if ps == nil {
		ps = &producerState{lastSeq: -1, receipts: map[uint64]*servingpb.SendReceipt{}}
		t.producers[producer] = ps
	}
	ps.lastSeq = int64(r.LastSequenceId)
	ps.receipts[r.LastSequenceId] = r
	c.broadcastLocked()
	return r
}

// indexAtLocked returns the index of the first message at or after id.
func indexAtLocked(t *topicState, id *servingpb.MessageId) int {
	return sort.Search(len(t.msgs), func(i int) bool {
		m := t.msgs[i].GetId()
		if m.GetLedger() != id.GetLedger() {
			return m.GetLedger() > id.GetLedger()
		}
		if m.GetEntry() != id.GetEntry() {
			return m.GetEntry() > id.GetEntry()
		}
		return m.GetBatch() >= id.GetBatch()
	})
}

func indexAtTimeLocked(t *topicState, ns int64) int {
	return sort.Search(len(t.msgs), func(i int) bool { return t.msgs[i].GetPublishTimeUnixNano() >= ns })
}

// firstUnackedLocked is where a durable subscription resumes.
func firstUnackedLocked(t *topicState, s *subState) int {
	for i := range t.msgs {
		if !s.acked[i] {
			return i
		}
	}
	return len(t.msgs)
}

// subscribe returns the subscription (created at its initial position) and
// the index to dispatch from.
func (c *Cluster) subscribe(req *servingpb.Subscribe) (*subState, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.topicLocked(req.GetTopic())
	if err != nil {
		return nil, 0, err
	}
	if req.GetNonDurable() {
		s := &subState{typ: req.GetType(), acked: map[int]bool{}}
		switch {
		case req.GetStartMessageId() != nil: // like the serving node: from the entry's start
			return s, indexAtLocked(t, entryStart(req.GetStartMessageId())), nil
		case req.GetStartTimeUnixNano() != 0:
			return s, indexAtTimeLocked(t, req.GetStartTimeUnixNano()), nil
		case req.GetInitialPosition() == servingpb.InitialPosition_EARLIEST:
			return s, 0, nil
		}
		return s, len(t.msgs), nil
	}
	s := t.subs[req.GetSubscription()]
	if s == nil {
		s = &subState{typ: req.GetType(), acked: map[int]bool{}}
		if req.GetInitialPosition() == servingpb.InitialPosition_LATEST {
			for i := range t.msgs {
				s.acked[i] = true
			}
		}
		t.subs[req.GetSubscription()] = s
	}
	return s, firstUnackedLocked(t, s), nil
}

// read returns up to n messages from index next that s has not acknowledged.
func (c *Cluster) read(topicName string, s *subState, next, n int) ([]*servingpb.ReceivedMessage, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.topics[topicName]
	if t == nil {
		return nil, next
	}
	var out []*servingpb.ReceivedMessage
	for ; next < len(t.msgs) && len(out) < n; next++ {
		if !s.acked[next] {
			out = append(out, t.msgs[next])
		}
	}
	return out, next
}

func (c *Cluster) ack(topicName string, s *subState, ids []*servingpb.MessageId, cumulative bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.topics[topicName]
	if t == nil {
		return
	}
	for _, id := range ids {
		i := indexAtLocked(t, id)
		if i >= len(t.msgs) {
			continue
		}
		s.acked[i] = true
		for j := 0; cumulative && j < i; j++ {
			s.acked[j] = true
		}
	}
}

// seek moves s to the target and returns the index to dispatch from.
func (c *Cluster) seek(topicName string, s *subState, to *servingpb.Seek) (int, *servingpb.MessageId) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.topics[topicName]
	i := 0
	switch k := to.GetTo().(type) {
	case *servingpb.Seek_MessageId:
		i = indexAtLocked(t, entryStart(k.MessageId))
	case *servingpb.Seek_TimeUnixNano:
		i = indexAtTimeLocked(t, k.TimeUnixNano)
	case *servingpb.Seek_Position:
		if k.Position == servingpb.InitialPosition_LATEST {
			i = len(t.msgs)
		}
	}
	s.acked = map[int]bool{}
	for j := range i {
		s.acked[j] = true
	}
	var pos *servingpb.MessageId
	if i < len(t.msgs) {
		pos = t.msgs[i].GetId()
	}
	return i, pos
}

func (c *Cluster) listTopics(namespace string) []*servingpb.TopicInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*servingpb.TopicInfo
	for name, n := range c.meta {
		if namespace == "" || strings.HasPrefix(name, namespace+"/") {
			out = append(out, &servingpb.TopicInfo{Topic: name, Partitions: uint32(n)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}

// entryStart is the first message of id's entry: the serving node positions
// by entry.
func entryStart(id *servingpb.MessageId) *servingpb.MessageId {
	return &servingpb.MessageId{Ledger: id.GetLedger(), Entry: id.GetEntry()}
}
