package metadata

import (
	"context"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/topic"
)

// TopicPolicy overrides part of its namespace's policy for one topic, as
// Pulsar's topic policies and Kafka's topic configs do; a partitioned
// topic's applies to every partition. A nil field keeps the namespace's
// value. Replication is the namespace's alone.
type TopicPolicy struct {
	RetentionMs              *int64  `json:"retention_ms,omitempty"`
	TTLMs                    *int64  `json:"ttl_ms,omitempty"`
	MaxMessageBytes          *uint64 `json:"max_message_bytes,omitempty"`
	OffloadThresholdBytes    *int64  `json:"offload_threshold_bytes,omitempty"`
	OffloadAgeMs             *int64  `json:"offload_age_ms,omitempty"`
	OffloadDeletionLagMs     *int64  `json:"offload_deletion_lag_ms,omitempty"`
	BacklogQuotaBytes        *int64  `json:"backlog_quota_bytes,omitempty"`
	BacklogQuotaPolicy       *string `json:"backlog_quota_policy,omitempty"`
	DispatchRateMsgs         *int64  `json:"dispatch_rate_msgs,omitempty"`
	DispatchRateBytes        *int64  `json:"dispatch_rate_bytes,omitempty"`
	PublishRateMsgs          *int64  `json:"publish_rate_msgs,omitempty"`
	PublishRateBytes         *int64  `json:"publish_rate_bytes,omitempty"`
	CompactionThresholdBytes *int64  `json:"compaction_threshold_bytes,omitempty"`
	Version                  int64   `json:"-"`
}

// Apply returns p with tp's fields in place of its own.
func (tp TopicPolicy) Apply(p NamespacePolicy) NamespacePolicy {
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.RetentionMs, tp.RetentionMs)
	set(&p.TTLMs, tp.TTLMs)
	set(&p.OffloadThresholdBytes, tp.OffloadThresholdBytes)
	set(&p.OffloadAgeMs, tp.OffloadAgeMs)
	set(&p.OffloadDeletionLagMs, tp.OffloadDeletionLagMs)
	set(&p.BacklogQuotaBytes, tp.BacklogQuotaBytes)
	set(&p.DispatchRateMsgs, tp.DispatchRateMsgs)
	set(&p.DispatchRateBytes, tp.DispatchRateBytes)
	set(&p.PublishRateMsgs, tp.PublishRateMsgs)
	set(&p.PublishRateBytes, tp.PublishRateBytes)
	set(&p.CompactionThresholdBytes, tp.CompactionThresholdBytes)
	if tp.MaxMessageBytes != nil {
		p.MaxMessageBytes = *tp.MaxMessageBytes
	}
	if tp.BacklogQuotaPolicy != nil {
		p.BacklogQuotaPolicy = *tp.BacklogQuotaPolicy
	}
	return p
}

// Empty reports whether tp overrides nothing.
func (tp TopicPolicy) Empty() bool {
	tp.Version = 0
	return tp == TopicPolicy{}
}

// Validate checks each value set as NamespacePolicy.Validate would.
func (tp TopicPolicy) Validate() error {
	if tp.MaxMessageBytes != nil && *tp.MaxMessageBytes == 0 {
		return invalidPolicy("max_message_bytes 0")
	}
	return tp.Apply(DefaultNamespacePolicy()).Validate()
}

// checkPolicyTopic checks a topic name for a policy, refusing a partition's:
// a partitioned topic's policy is set on the topic.
func checkPolicyTopic(name string) error {
	if err := checkTopic(name); err != nil {
		return err
	}
	n, _ := topic.Parse(name)
	if i, parent := n.PartitionIndex(); i >= 0 {
		return errcode.New(errcode.InvalidArgument, "metadata: %s is a partition; set the policy of %s", name, parent)
	}
	return nil
}

// GetTopicPolicy answers topic's policy; ErrNotFound when it has none.
func (s *Store) GetTopicPolicy(ctx context.Context, name string) (TopicPolicy, error) {
	if err := checkTopic(name); err != nil {
		return TopicPolicy{}, err
	}
	kv, err := s.get(ctx, "get topic policy", s.keys.topicPolicy(name))
	if err != nil {
		return TopicPolicy{}, err
	}
	if kv == nil {
		return TopicPolicy{}, ErrNotFound
	}
	var tp TopicPolicy
	if err := decode(kv, &tp); err != nil {
		return TopicPolicy{}, err
	}
	tp.Version = kv.ModRevision
	return tp, nil
}

// SetTopicPolicy validates tp and stores it as name's policy (an empty
// one deletes it). The topic need not exist yet: a policy may be set
// before the topic is first used, and goes with the topic when it is
// deleted, or with its namespace.
func (s *Store) SetTopicPolicy(ctx context.Context, name string, tp TopicPolicy) error {
	if err := checkPolicyTopic(name); err != nil {
		return err
	}
	if err := tp.Validate(); err != nil {
		return err
	}
	if tp.Empty() {
		return s.DeleteTopicPolicy(ctx, name)
	}
	return s.put(ctx, "set topic policy", s.keys.topicPolicy(name), tp)
}

// DeleteTopicPolicy deletes name's policy, if it has one.
func (s *Store) DeleteTopicPolicy(ctx context.Context, name string) error {
	if err := checkPolicyTopic(name); err != nil {
		return err
	}
	_, err := s.txn(ctx, "delete topic policy", nil, []clientv3.Op{clientv3.OpDelete(s.keys.topicPolicy(name))}, nil)
	return err
}

// PolicyChange names a policy that changed: a namespace's (Topic empty) or
// a topic's.
type PolicyChange struct {
	Namespace string
	Topic     string
}

// WatchPolicies watches every namespace and topic policy. It returns once
// etcd has confirmed the watch; the channel then receives each change
// (set or deleted) and is closed when ctx ends, the store closes or the
// watch fails (watch again to go on; what changed meanwhile is not
// replayed, so re-read what matters).
func (s *Store) WatchPolicies(ctx context.Context) <-chan PolicyChange {
	out := make(chan PolicyChange, 64)
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	nsDir, topicDir := s.keys.policies(), s.keys.topicPolicy("")
	wch := s.client.Watch(wctx, nsDir, clientv3.WithCreatedNotify(), clientv3.WithPrefix())
	tch := s.client.Watch(wctx, topicDir, clientv3.WithCreatedNotify(), clientv3.WithPrefix())
	if !awaitWatchCreated(ctx, wch) || !awaitWatchCreated(ctx, tch) {
		cancel()
		close(out)
		return out
	}
	go func() {
		defer close(out)
		defer cancel()
		for {
			var (
				resp clientv3.WatchResponse
				ok   bool
				dir  string
			)
			select {
			case resp, ok = <-wch:
				dir = nsDir
			case resp, ok = <-tch:
				dir = topicDir
			}
			if !ok || resp.Err() != nil || resp.Canceled {
				return
			}
			for _, ev := range resp.Events {
				name := strings.TrimPrefix(string(ev.Kv.Key), dir)
				c := PolicyChange{Namespace: name}
				if dir == topicDir {
					n, err := topic.Parse(name)
					if err != nil {
						continue
					}
					c = PolicyChange{Namespace: n.NamespaceName(), Topic: name}
				}
				select {
				case out <- c:
				case <-wctx.Done():
					return
				}
			}
		}
	}()
	return out
}
