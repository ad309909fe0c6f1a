package serving

import (
	"context"
	"errors"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	topicname "github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// policyFor answers the policy topic name (of namespace ns) runs with: the
// namespace's, with the topic's own policy applied (for a partition, its
// partitioned topic's).
func (n *Node) policyFor(ctx context.Context, name, ns string) (metadata.NamespacePolicy, error) {
	pol, err := n.policyOf(ctx, ns)
	if err != nil {
		return pol, err
	}
	tp, err := n.meta.GetTopicPolicy(ctx, policyTopic(name))
	switch {
	case errors.Is(err, metadata.ErrNotFound):
		return pol, nil
	case err != nil:
		return pol, unavailable("reading topic policy", err)
	}
	return tp.Apply(pol), nil
}

// policyTopic is the topic whose policy name runs with: its partitioned
// topic's for a partition, else its own.
func policyTopic(name string) string {
	if n, err := topicname.Parse(name); err == nil {
		if i, parent := n.PartitionIndex(); i >= 0 {
			return parent.String()
		}
	}
	return name
}

// PolicyWatcher is a Meta that can watch policy changes (the etcd store
// can); a node then applies a change to the topics it serves within a
// moment. Without one, a topic takes a change at its next trim or load.
type PolicyWatcher interface {
	WatchPolicies(ctx context.Context) <-chan metadata.PolicyChange
}

// followPolicies applies each policy change to the topics this node
// serves, watching again (after a second) when a watch fails, until the
// node closes.
func (n *Node) followPolicies(pw PolicyWatcher) {
	defer n.wg.Done()
	for n.ctx.Err() == nil {
		for c := range pw.WatchPolicies(n.ctx) {
			if c.Topic != "" {
				n.refreshPolicies(n.ctx, c.Topic)
			} else {
				n.refreshWhere(n.ctx, func(_ string, t *topic) bool { return t.ns == c.Namespace })
			}
		}
		t := time.NewTimer(time.Second)
		select {
		case <-n.ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// refreshPolicies applies a changed topic policy to the topics this node
// serves under it (a partitioned topic's partitions too).
func (n *Node) refreshPolicies(ctx context.Context, name string) {
	n.refreshWhere(ctx, func(tn string, _ *topic) bool { return policyTopic(tn) == name })
}

// refreshWhere re-reads the policy of the topics served here that match.
func (n *Node) refreshWhere(ctx context.Context, match func(name string, t *topic) bool) {
	n.mu.Lock()
	var ts []*topic
	for tn, t := range n.mu.topics {
		if match(tn, t) {
			ts = append(ts, t)
		}
	}
	n.mu.Unlock()
	for _, t := range ts {
		if pol, err := n.policyFor(ctx, t.name, t.ns); err == nil {
			t.policy.Store(&pol)
		}
	}
}

// canonicalPolicyTopic parses a topic name for a policy call.
func canonicalPolicyTopic(s string) (string, error) {
	n, err := topicname.Parse(s)
	if err != nil {
		return "", err
	}
	if i, parent := n.PartitionIndex(); i >= 0 {
		return "", errcode.New(errcode.InvalidArgument, "%s is a partition; set the policy of %s", n, parent)
	}
	return n.String(), nil
}

// SetTopicPolicy validates and stores a topic's policy, replacing what it
// had, and applies it to the topic here if this node serves it.
func (n *Node) SetTopicPolicy(ctx context.Context, req *servingpb.SetTopicPolicyRequest) (*servingpb.SetTopicPolicyResponse, error) {
	name, err := canonicalPolicyTopic(req.GetTopic())
	if err != nil {
		return nil, err
	}
	tp, err := topicPolicyFromPB(req.GetPolicy())
	if err != nil {
		return nil, err
	}
	if err := tp.Validate(); err != nil {
		return nil, errcode.New(errcode.InvalidPolicy, "%v", err)
	}
	if err := n.meta.SetTopicPolicy(ctx, name, tp); err != nil {
		return nil, unavailable("setting topic policy", err)
	}
	n.refreshPolicies(ctx, name)
	return &servingpb.SetTopicPolicyResponse{}, nil
}

// GetTopicPolicy answers a topic's own policy and the policy it runs with.
func (n *Node) GetTopicPolicy(ctx context.Context, req *servingpb.GetTopicPolicyRequest) (*servingpb.GetTopicPolicyResponse, error) {
	name, err := canonicalPolicyTopic(req.GetTopic())
	if err != nil {
		return nil, err
	}
	out := &servingpb.GetTopicPolicyResponse{}
	tp, err := n.meta.GetTopicPolicy(ctx, name)
	switch {
	case errors.Is(err, metadata.ErrNotFound):
	case err != nil:
		return nil, unavailable("reading topic policy", err)
	default:
		out.Policy = topicPolicyPB(tp)
	}
	n2, _ := topicname.Parse(name)
	eff, err := n.policyFor(ctx, name, n2.NamespaceName())
	if err != nil {
		return nil, err
	}
	out.Effective = nsPolicyPB(eff)
	return out, nil
}

// RemoveTopicPolicy deletes a topic's policy: the namespace's applies again.
func (n *Node) RemoveTopicPolicy(ctx context.Context, req *servingpb.RemoveTopicPolicyRequest) (*servingpb.RemoveTopicPolicyResponse, error) {
	name, err := canonicalPolicyTopic(req.GetTopic())
	if err != nil {
		return nil, err
	}
	if err := n.meta.DeleteTopicPolicy(ctx, name); err != nil {
		return nil, unavailable("removing topic policy", err)
	}
	n.refreshPolicies(ctx, name)
	return &servingpb.RemoveTopicPolicyResponse{}, nil
}

func topicPolicyFromPB(p *servingpb.TopicPolicy) (metadata.TopicPolicy, error) {
	var tp metadata.TopicPolicy
	if p == nil {
		return tp, nil
	}
	tp.RetentionMs, tp.TTLMs, tp.MaxMessageBytes = p.RetentionMs, p.TtlMs, p.MaxMessageBytes
	tp.OffloadThresholdBytes, tp.OffloadAgeMs, tp.OffloadDeletionLagMs = p.OffloadThresholdBytes, p.OffloadAgeMs, p.OffloadDeletionLagMs
	tp.BacklogQuotaBytes, tp.DispatchRateMsgs, tp.DispatchRateBytes = p.BacklogQuotaBytes, p.DispatchRateMsgs, p.DispatchRateBytes
	tp.CompactionThresholdBytes = p.CompactionThresholdBytes
	tp.PublishRateMsgs, tp.PublishRateBytes = p.PublishRateMsgs, p.PublishRateBytes
	if p.BacklogQuotaPolicy != nil {
		var s string
		switch *p.BacklogQuotaPolicy {
		case servingpb.BacklogQuotaPolicy_PRODUCER_EXCEPTION:
			s = metadata.QuotaProducerException
		case servingpb.BacklogQuotaPolicy_CONSUMER_BACKLOG_EVICTION:
			s = metadata.QuotaConsumerBacklogEviction
		default:
			return tp, errcode.New(errcode.InvalidPolicy, "unknown backlog quota policy %d", *p.BacklogQuotaPolicy)
		}
		tp.BacklogQuotaPolicy = &s
	}
	return tp, nil
}

func topicPolicyPB(tp metadata.TopicPolicy) *servingpb.TopicPolicy {
	p := &servingpb.TopicPolicy{RetentionMs: tp.RetentionMs, TtlMs: tp.TTLMs, MaxMessageBytes: tp.MaxMessageBytes,
		OffloadThresholdBytes: tp.OffloadThresholdBytes, OffloadAgeMs: tp.OffloadAgeMs, OffloadDeletionLagMs: tp.OffloadDeletionLagMs,
		BacklogQuotaBytes: tp.BacklogQuotaBytes, DispatchRateMsgs: tp.DispatchRateMsgs, DispatchRateBytes: tp.DispatchRateBytes,
		CompactionThresholdBytes: tp.CompactionThresholdBytes, PublishRateMsgs: tp.PublishRateMsgs, PublishRateBytes: tp.PublishRateBytes}
	if tp.BacklogQuotaPolicy != nil {
		q := quotaPolicyPB(*tp.BacklogQuotaPolicy)
		p.BacklogQuotaPolicy = &q
	}
	return p
}
