package serving

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/strata-mq/strata/metadata"
)

// KeyOwner answers which of consumers (named, in attach order) a
// key_shared subscription gives key to, so tests can tell which keys move
// when a consumer joins.
func KeyOwner(consumers []string, key string) string {
	cs := make([]*consumer, len(consumers))
	for i, name := range consumers {
		cs[i] = &consumer{name: name}
	}
	return newHashRing(cs).pick(keyHash(key)).name
}

// ProducersWaiting answers how many producers wait in line for topicName
// (a full name) to themselves, 0 when it is not loaded here.
func (n *Node) ProducersWaiting(topicName string) int {
	var waiting int
	n.withTopic(topicName, func(t *topic) { waiting = len(t.mu.waiters) })
	return waiting
}

// Placement answers the id of the node Lookup gives an unowned topic to,
// among nodes (ids).
func Placement(topicName string, nodes []string) string {
	infos := make([]metadata.NodeInfo, len(nodes))
	for i, id := range nodes {
		infos[i] = metadata.NodeInfo{ID: id}
	}
	return choose(topicName, infos).ID
}

// Rebalance runs one rebalance round as at now and answers how many topics
// it unloaded.
func (n *Node) Rebalance(now time.Time) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.rebalance(ctx, now)
}

// LoadStats answers how many topic loads on n fenced and recovered the
// previous owner's ledger, and how many entries they read back.
func (n *Node) LoadStats() (recoveries, replayed int) {
	return counterValue(n.m.loadRecoveries), counterValue(n.m.loadReplayed)
}

// EarlierReceiptEntries answers how many entries of earlier owners n read
// back for the receipts of resends.
func (n *Node) EarlierReceiptEntries() int { return counterValue(n.m.earlierReads) }

func counterValue(c prometheus.Counter) int {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return int(m.GetCounter().GetValue())
}

// EarlyAcks answers how many acks of messages not read yet subscription
// sub of topicName (a full name) keeps (earlyacks.go), 0 when it is not
// loaded here.
func (n *Node) EarlyAcks(topicName, sub string) int {
	var kept int
	n.withTopic(topicName, func(t *topic) {
		if s := t.mu.subs[sub]; s != nil {
			kept = s.early.n
		}
	})
	return kept
}

// Draining reports whether topicName (a full name) is loaded here and a
// graceful unload is waiting for its appends in flight.
func (n *Node) Draining(topicName string) bool {
	return n.topicState(topicName) == topicDraining
}

// InFlight answers how many appends of topicName (a full name) are in
// flight on this node.
func (n *Node) InFlight(topicName string) int {
	var inflight int
	n.withTopic(topicName, func(t *topic) { inflight = t.mu.inflight })
	return inflight
}

// Serves reports whether topicName (a full name) is loaded here and served
// (neither loading, nor draining, nor dropped).
func (n *Node) Serves(topicName string) bool {
	return n.topicState(topicName) == topicServing
}

// topicState answers the state of topicName loaded here (topicDropped
// when it is not loaded).
func (n *Node) topicState(topicName string) topicState {
	state := topicDropped
	n.withTopic(topicName, func(t *topic) { state = t.mu.state })
	return state
}

// withTopic calls f with topicName's topic, under its mu, when it is loaded
// here.
func (n *Node) withTopic(topicName string, f func(t *topic)) {
	n.mu.Lock()
	t := n.mu.topics[topicName]
	n.mu.Unlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f(t)
}
