package serving

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Rebalancing. A topic nobody owns goes to the node that rendezvous hashing
// picks over the live nodes (Lookup), but an owned topic stays where it is:
// after a node joins, or comes back from a restart, it would own nothing
// until its peers restarted, and after a rolling restart the last node
// restarted would own nothing at all. So every RebalanceInterval each node
// unloads, gracefully and a few at a time, the topics that the hashing now
// gives to another live node; their clients look them up again and land
// there. Rendezvous hashing moves only the topics the new node wins (about
// one in N), and a node's departure moves only its own.
//
// A round is skipped while any node registered less than one interval ago,
// so that a node crash-looping through its start does not pull topics to
// itself and drop them again; a topic loaded less than one interval ago
// stays put for the round.

// rebalanceLoop runs rebalance rounds until the node closes.
func (n *Node) rebalanceLoop() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.RebalanceInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.MetaTimeout)
		n.rebalance(ctx, time.Now())
		cancel()
	}
}

// rebalance runs one round and answers how many topics it unloaded.
func (n *Node) rebalance(ctx context.Context, now time.Time) int {
	nodes, err := n.meta.ListNodes(ctx)
	if err != nil {
		n.log.Debug("rebalance: listing nodes", "err", err)
		return 0
	}
	if !slices.ContainsFunc(nodes, func(ni metadata.NodeInfo) bool { return ni.ID == n.cfg.NodeID }) {
		return 0 // between sessions: not a member now
	}
	settle := n.cfg.RebalanceInterval
	for _, ni := range nodes {
		if now.Sub(time.Unix(0, ni.StartedAt)) < settle {
			return 0
		}
	}
	type move struct {
		t  *topic
		to *metadata.NodeInfo
	}
	n.mu.Lock()
	for name, h := range n.mu.handedOff {
		if !now.Before(h.until) {
			delete(n.mu.handedOff, name)
		}
	}
	var moving []move
	for _, t := range n.mu.topics {
		if now.Sub(t.created) < settle {
			continue
		}
		if to := choose(t.name, nodes); to != nil && to.ID != n.cfg.NodeID {
			moving = append(moving, move{t, to})
		}
	}
	n.mu.Unlock()
	slices.SortFunc(moving, func(a, b move) int { return cmp.Compare(a.t.name, b.t.name) })
	moved := 0
	for _, m := range moving {
		if moved == n.cfg.RebalanceMaxUnloads {
			break
		}
		select {
		case <-m.t.ready:
		default:
			continue // still loading: next round
		}
		m.t.mu.Lock()
		serving := m.t.mu.state == topicServing
		m.t.mu.Unlock()
		if !serving {
			continue // dropped already (by the last round, say), not yet forgotten
		}
		moved++
		n.mu.Lock()
		if n.mu.handedOff == nil {
			n.mu.handedOff = make(map[string]handOff)
		}
		n.mu.handedOff[m.t.name] = handOff{to: *m.to, until: now.Add(n.cfg.RebalanceInterval)}
		n.mu.Unlock()
		m.t.log.Info("rebalance: unloading the topic for the node the placement picks", "to", m.to.ID)
		m.t.drop(reasonMove, &errcode.Error{Code: errcode.NotOwner,
			Message: "topic " + m.t.name + " moves to node " + m.to.ID, Redirect: m.to.GRPCAddr}, true)
	}
	return moved
}

// handOff is a topic a rebalance round moved to another node. Its clients
// are sent there, but the new node may still see this node's ownership
// (released once the cursors are flushed and the ledger closed) and send
// them back; loading the topic again here would undo the move, and the
// next round would move it again (three times in a row in a probe of a
// rolling restart, each costing a failover's redeliveries).
type handOff struct {
	to    metadata.NodeInfo
	until time.Time
}

// handedOffTo answers the node topic full was just moved to, while that
// node is still a live member; such a topic is redirected there rather
// than loaded here.
func (n *Node) handedOffTo(ctx context.Context, full string) (*metadata.NodeInfo, bool) {
	n.mu.Lock()
	h, ok := n.mu.handedOff[full]
	n.mu.Unlock()
	if !ok || !time.Now().Before(h.until) {
		return nil, false
	}
	nodes, err := n.meta.ListNodes(ctx)
	if err != nil || !slices.ContainsFunc(nodes, func(ni metadata.NodeInfo) bool { return ni.ID == h.to.ID }) {
		return nil, false // gone meanwhile: load it where the client came
	}
	return &h.to, true
}

// UnloadTopic unloads one topic (a partition, or a topic that is not
// partitioned) from its owner gracefully, as Pulsar's topics unload: its
// cursors are flushed, its ledger closed and its ownership released, and
// its clients look it up again, which loads it on the node the placement
// picks (perhaps this one). It answers once the topic is released. A topic
// nobody has loaded is left as it is.
func (n *Node) UnloadTopic(ctx context.Context, req *servingpb.UnloadTopicRequest) (*servingpb.UnloadTopicResponse, error) {
	name, err := canonical(req.GetTopic())
	if err != nil {
		return nil, err
	}
	full := name.String()
	n.mu.Lock()
	t := n.mu.topics[full]
	n.mu.Unlock()
	if t == nil {
		o, err := n.meta.GetOwnership(ctx, full)
		switch {
		case errors.Is(err, metadata.ErrNotFound):
			return &servingpb.UnloadTopicResponse{}, nil
		case err != nil:
			return nil, unavailable("reading ownership", err)
		case o.NodeID != n.cfg.NodeID:
			return nil, &errcode.Error{Code: errcode.NotOwner, Message: "topic " + full + " is owned by " + o.NodeID, Redirect: o.GRPCAddr}
		}
		return &servingpb.UnloadTopicResponse{}, nil // released meanwhile
	}
	if err := t.waitReady(ctx); err != nil && errcode.CodeOf(err) != errcode.TopicFenced {
		return nil, err
	}
	t.drop(reasonAdmin, errcode.New(errcode.NotOwner, "topic %s was unloaded; look it up again", full), true)
	select {
	case <-t.gone:
	case <-ctx.Done():
		return nil, errcode.New(errcode.Timeout, "topic %s is still unloading", full)
	}
	return &servingpb.UnloadTopicResponse{}, nil
}
