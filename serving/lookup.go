package serving

import (
	"context"
	"errors"
	"hash/fnv"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Lookup answers the topic's owner. When nobody owns it, a live node is
// chosen by rendezvous hashing of the topic name over the registered nodes
// (which spreads topics evenly without a load report); when that is this
// node it takes the topic at once, otherwise the chosen node takes it on the
// client's first request. A missing topic is created, unless the request
// says existing_only (admin calls): then it is TOPIC_NOT_FOUND, whichever
// node is chosen.
func (n *Node) Lookup(ctx context.Context, req *servingpb.LookupRequest) (*servingpb.LookupResponse, error) {
	name, err := canonical(req.GetTopic())
	if err != nil {
		return nil, err
	}
	if o, err := n.meta.GetOwnership(ctx, name.String()); err == nil {
		return &servingpb.LookupResponse{Owner: o.GRPCAddr, NodeId: o.NodeID}, nil
	} else if !errors.Is(err, metadata.ErrNotFound) {
		return nil, unavailable("reading ownership", err)
	}
	existingOnly := req.GetExistingOnly()
	if existingOnly {
		if err := n.ensureTopic(ctx, name.String(), false); err != nil {
			return nil, err
		}
	}
	nodes, err := n.meta.ListNodes(ctx)
	if err != nil {
		return nil, unavailable("listing nodes", err)
	}
	chosen := choose(name.String(), nodes)
	if chosen == nil || chosen.ID == n.cfg.NodeID {
		if _, err := n.topicFor(ctx, name.String(), !existingOnly); err != nil {
			return nil, err
		}
		return &servingpb.LookupResponse{Owner: n.cfg.GRPCAddr, NodeId: n.cfg.NodeID}, nil
	}
	return &servingpb.LookupResponse{Owner: chosen.GRPCAddr, NodeId: chosen.ID}, nil
}

// choose picks the node with the highest hash of (node, topic).
func choose(topicName string, nodes []metadata.NodeInfo) *metadata.NodeInfo {
	var best *metadata.NodeInfo
	var bestScore uint64
	for i := range nodes {
		h := fnv.New64a()
		h.Write([]byte(nodes[i].ID))
		h.Write([]byte{0})
		h.Write([]byte(topicName))
		if s := fmix64(h.Sum64()); best == nil || s > bestScore {
			best, bestScore = &nodes[i], s
		}
	}
	return best
}

// topicFor answers the served topic name (canonical), loading it when this
// node may own it. A topic owned elsewhere is NotOwner with the owner's
// address. With autoCreate a missing topic is created (as Pulsar does on
// first produce or subscribe); otherwise it is TopicNotFound.
func (n *Node) topicFor(ctx context.Context, raw string, autoCreate bool) (*topic, error) {
	name, err := canonical(raw)
	if err != nil {
		return nil, err
	}
	full := name.String()
	dropped := false // the topic was dropped here during this call
	for attempt := 0; attempt < 3; attempt++ {
		n.mu.Lock()
		if n.mu.closed {
			n.mu.Unlock()
			return nil, errcode.New(errcode.NotOwner, "node %s is shutting down", n.cfg.NodeID)
		}
		t := n.mu.topics[full]
		n.mu.Unlock()
		if t == nil {
			if t, err = n.startLoad(ctx, full, name.NamespaceName(), autoCreate, dropped); err != nil {
				return nil, err
			}
		}
		err = t.waitReady(ctx)
		if err == nil {
			return t, nil
		}
		if errcode.CodeOf(err) != errcode.TopicFenced {
			return nil, err
		}
		// Dropped, perhaps unloading: once it is released and forgotten,
		// the next attempt finds who owns it now, or where the placement
		// puts it. Answering TopicFenced at once sent clients into their
		// backoff, past the end of the unload.
		select {
		case <-t.gone:
		case <-ctx.Done():
			return nil, err
		}
		dropped = true
	}
	return nil, err
}

// startLoad checks who owns the topic and, when nobody does, starts loading
// it here; with place, only when the placement picks this node (a client
// that came while the topic was unloaded here goes where a lookup after the
// unload would send it).
func (n *Node) startLoad(ctx context.Context, full, ns string, autoCreate, place bool) (*topic, error) {
	if o, err := n.meta.GetOwnership(ctx, full); err == nil && o.NodeID != n.cfg.NodeID {
		return nil, &errcode.Error{Code: errcode.NotOwner, Message: "topic " + full + " is owned by " + o.NodeID, Redirect: o.GRPCAddr}
	} else if err != nil && !errors.Is(err, metadata.ErrNotFound) {
		return nil, unavailable("reading ownership", err)
	}
	if to, ok := n.handedOffTo(ctx, full); ok {
		return nil, &errcode.Error{Code: errcode.NotOwner, Message: "topic " + full + " moved to node " + to.ID, Redirect: to.GRPCAddr}
	}
	if place {
		if nodes, err := n.meta.ListNodes(ctx); err == nil {
			if to := choose(full, nodes); to != nil && to.ID != n.cfg.NodeID {
				return nil, &errcode.Error{Code: errcode.NotOwner, Message: "topic " + full + " was unloaded; it is placed on node " + to.ID, Redirect: to.GRPCAddr}
			}
		}
	}
	if err := n.ensureTopic(ctx, full, autoCreate); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return nil, errcode.New(errcode.NotOwner, "node %s is shutting down", n.cfg.NodeID)
	}
	if t := n.mu.topics[full]; t != nil {
		return t, nil
	}
	t := newTopic(n, full, ns)
	n.mu.topics[full] = t
	n.m.ownedTopics.Set(float64(len(n.mu.topics)))
	n.wg.Add(1)
	go t.load()
	return t, nil
}

// ensureTopic checks the topic record exists (creating it with autoCreate)
// and is not the parent of a partitioned topic.
func (n *Node) ensureTopic(ctx context.Context, full string, autoCreate bool) error {
	rec, err := n.meta.GetTopic(ctx, full)
	if errors.Is(err, metadata.ErrNotFound) || errcode.CodeOf(err) == errcode.TopicNotFound {
		if !autoCreate {
			return errcode.New(errcode.TopicNotFound, "topic %s does not exist", full)
		}
		if n.cfg.NoTopicAutoCreation {
			return errcode.New(errcode.TopicNotFound, "topic %s does not exist, and this cluster creates topics only when asked (strata topics create)", full)
		}
		err = n.meta.CreateTopic(ctx, &metadata.Topic{Name: full, CreatedAt: nowNanos()})
		if errcode.CodeOf(err) == errcode.TopicExists {
			return nil
		}
		if err != nil {
			return unavailable("creating topic", err)
		}
		return nil
	}
	if err != nil {
		return unavailable("reading topic", err)
	}
	if rec.Partitions > 0 {
		return errcode.New(errcode.InvalidArgument, "topic %s has %d partitions: use %s-partition-N", full, rec.Partitions, full)
	}
	return nil
}

// fmix64 is MurmurHash3's finalizer: FNV alone leaves scores of names that
// differ in one byte correlated, so one node would win every topic.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
