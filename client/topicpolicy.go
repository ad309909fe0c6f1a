package client

import (
	"context"
	"time"

	"github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/serving/servingpb"
)

// TopicPolicy overrides part of its namespace's policy for one topic, as
// Pulsar's topic policies and Kafka's topic configs (retention.ms,
// max.message.bytes) do; a partitioned topic's applies to every
// partition. A nil field keeps the namespace's value; the fields mean what
// NamespacePolicy's do. Replication stays the namespace's.
type TopicPolicy struct {
	Retention                *time.Duration      `json:"retention,omitempty"`
	TTL                      *time.Duration      `json:"ttl,omitempty"`
	MaxMessageBytes          *uint64             `json:"max_message_bytes,omitempty"`
	OffloadThresholdBytes    *int64              `json:"offload_threshold_bytes,omitempty"`
	OffloadAge               *time.Duration      `json:"offload_age,omitempty"`
	OffloadDeletionLag       *time.Duration      `json:"offload_deletion_lag,omitempty"`
	BacklogQuotaBytes        *int64              `json:"backlog_quota_bytes,omitempty"`
	BacklogQuotaPolicy       *BacklogQuotaPolicy `json:"backlog_quota_policy,omitempty"`
	DispatchRateMsgs         *int64              `json:"dispatch_rate_msgs,omitempty"`
	DispatchRateBytes        *int64              `json:"dispatch_rate_bytes,omitempty"`
	PublishRateMsgs          *int64              `json:"publish_rate_msgs,omitempty"`
	PublishRateBytes         *int64              `json:"publish_rate_bytes,omitempty"`
	CompactionThresholdBytes *int64              `json:"compaction_threshold_bytes,omitempty"`
}

func msPtr(d *time.Duration) *int64 {
	if d == nil {
		return nil
	}
	ms := durationMs(*d)
	return &ms
}

func durationPtr(ms *int64) *time.Duration {
	if ms == nil {
		return nil
	}
	d := msDuration(*ms)
	return &d
}

func (p TopicPolicy) proto() (*servingpb.TopicPolicy, error) {
	val := func(d *time.Duration) time.Duration {
		if d == nil {
			return 0
		}
		return *d
	}
	if err := checkPolicyDurations(val(p.Retention), val(p.OffloadAge), val(p.TTL), val(p.OffloadDeletionLag)); err != nil {
		return nil, err
	}
	pb := &servingpb.TopicPolicy{RetentionMs: msPtr(p.Retention), TtlMs: msPtr(p.TTL), MaxMessageBytes: p.MaxMessageBytes,
		OffloadThresholdBytes: p.OffloadThresholdBytes, OffloadAgeMs: msPtr(p.OffloadAge), OffloadDeletionLagMs: msPtr(p.OffloadDeletionLag),
		BacklogQuotaBytes: p.BacklogQuotaBytes, DispatchRateMsgs: p.DispatchRateMsgs, DispatchRateBytes: p.DispatchRateBytes,
		PublishRateMsgs: p.PublishRateMsgs, PublishRateBytes: p.PublishRateBytes,
		CompactionThresholdBytes: p.CompactionThresholdBytes}
	if q := p.BacklogQuotaPolicy; q != nil {
		v := servingpb.BacklogQuotaPolicy_PRODUCER_EXCEPTION
		switch *q {
		case ProducerException, "":
		case ConsumerBacklogEviction:
			v = servingpb.BacklogQuotaPolicy_CONSUMER_BACKLOG_EVICTION
		default:
			return nil, invalidArg("backlog quota policy %q: want %s or %s", *q, ProducerException, ConsumerBacklogEviction)
		}
		pb.BacklogQuotaPolicy = &v
	}
	return pb, nil
}

func topicPolicyFromProto(pb *servingpb.TopicPolicy) TopicPolicy {
	p := TopicPolicy{Retention: durationPtr(pb.RetentionMs), TTL: durationPtr(pb.TtlMs), MaxMessageBytes: pb.MaxMessageBytes,
		OffloadThresholdBytes: pb.OffloadThresholdBytes, OffloadAge: durationPtr(pb.OffloadAgeMs), OffloadDeletionLag: durationPtr(pb.OffloadDeletionLagMs),
		BacklogQuotaBytes: pb.BacklogQuotaBytes, DispatchRateMsgs: pb.DispatchRateMsgs, DispatchRateBytes: pb.DispatchRateBytes,
		PublishRateMsgs: pb.PublishRateMsgs, PublishRateBytes: pb.PublishRateBytes,
		CompactionThresholdBytes: pb.CompactionThresholdBytes}
	if pb.BacklogQuotaPolicy != nil {
		q := ProducerException
		if *pb.BacklogQuotaPolicy == servingpb.BacklogQuotaPolicy_CONSUMER_BACKLOG_EVICTION {
			q = ConsumerBacklogEviction
		}
		p.BacklogQuotaPolicy = &q
	}
	return p
}

// SetTopicPolicy replaces topic's own policy (a zero TopicPolicy removes
// it); values out of range are ErrInvalidPolicy. The node serving the
// topic applies it within a moment (it watches policies in etcd). A
// partition's name is refused: set the partitioned topic's.
func (a *Admin) SetTopicPolicy(ctx context.Context, topicName string, p TopicPolicy) error {
	name, err := topic.Canonical(topicName)
	if err != nil {
		return err
	}
	pb, err := p.proto()
	if err != nil {
		return err
	}
	return a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		_, err := b.SetTopicPolicy(ctx, &servingpb.SetTopicPolicyRequest{Topic: name, Policy: pb})
		return err
	})
}

// GetTopicPolicy answers topic's own policy (zero when it has none) and
// the policy it runs with: its namespace's with its own applied.
func (a *Admin) GetTopicPolicy(ctx context.Context, topicName string) (own TopicPolicy, effective NamespacePolicy, err error) {
	name, err := topic.Canonical(topicName)
	if err != nil {
		return own, effective, err
	}
	err = a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.GetTopicPolicy(ctx, &servingpb.GetTopicPolicyRequest{Topic: name})
		if err != nil {
			return err
		}
		if resp.GetPolicy() != nil {
			own = topicPolicyFromProto(resp.GetPolicy())
		}
		effective = policyFromProto(resp.GetEffective())
		return nil
	})
	return own, effective, err
}

// RemoveTopicPolicy removes topic's own policy: its namespace's applies
// again (at once on the node that answers, as SetTopicPolicy).
func (a *Admin) RemoveTopicPolicy(ctx context.Context, topicName string) error {
	name, err := topic.Canonical(topicName)
	if err != nil {
		return err
	}
	return a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		_, err := b.RemoveTopicPolicy(ctx, &servingpb.RemoveTopicPolicyRequest{Topic: name})
		return err
	})
}
