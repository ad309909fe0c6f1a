package serving

import (
	"context"

	"github.com/strata-mq/strata/serving/servingpb"
)

// The cluster's membership as a node sees it: who audits the bookies, and
// the listing of nodes and bookies for operators.

// audits reports whether this node is the one that audits the bookies
// (ledger.Auditor): the live node with the smallest id. Two nodes that
// both think so for a moment only duplicate copies; the ledger metadata's
// compare-and-swap keeps one.
func (n *Node) audits(ctx context.Context) bool {
	nodes, err := n.meta.ListNodes(ctx) // in id order
	return err == nil && len(nodes) > 0 && nodes[0].ID == n.cfg.NodeID
}

// ListCluster answers the serving nodes registered now, with the topics
// each owns, and the bookies registered now.
func (n *Node) ListCluster(ctx context.Context, _ *servingpb.ListClusterRequest) (*servingpb.ListClusterResponse, error) {
	nodes, err := n.meta.ListNodes(ctx)
	if err != nil {
		return nil, unavailable("listing nodes", err)
	}
	owned, err := n.meta.CountOwnedTopics(ctx)
	if err != nil {
		return nil, unavailable("counting owned topics", err)
	}
	bookies, err := n.meta.ListBookies(ctx)
	if err != nil {
		return nil, unavailable("listing bookies", err)
	}
	out := &servingpb.ListClusterResponse{}
	for _, ni := range nodes {
		out.Nodes = append(out.Nodes, &servingpb.ClusterNode{Id: ni.ID, GrpcAddr: ni.GRPCAddr, HttpAddr: ni.HTTPAddr,
			StartedAtUnixNano: ni.StartedAt, OwnedTopics: uint32(owned[ni.ID])})
	}
	for _, b := range bookies {
		out.Bookies = append(out.Bookies, &servingpb.ClusterBookie{Id: b.ID, Addr: b.Addr, ReadOnly: b.ReadOnly})
	}
	return out, nil
}
