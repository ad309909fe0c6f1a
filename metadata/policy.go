package metadata

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/topic"
)

// Bounds of NamespacePolicy values.
const (
	// MaxEnsemble bounds a policy's ensemble size.
	MaxEnsemble = 32
	// MaxMessageBytesLimit bounds a policy's MaxMessageBytes.
	MaxMessageBytesLimit = 64 << 20
)

// ErrInvalidPolicy is the sentinel of every policy validation error
// (errcode.InvalidPolicy); nothing is written.
var ErrInvalidPolicy = errcode.New(errcode.InvalidPolicy, "metadata: invalid namespace policy")

// Validate checks the policy: when any of E/Qw/Qa is set all are, with
// MaxEnsemble >= E >= Qw >= Qa >= 1; retention >= -1; TTL >= 0; message
// size at most MaxMessageBytesLimit; offload thresholds >= -1; deletion lag
// >= 0; backlog quota >= 0 with a known quota policy; dispatch rates >= 0.
func (p NamespacePolicy) Validate() error {
	if err := p.validateQuorums(); err != nil {
		return err
	}
	switch {
	case p.RetentionMs < -1:
		return invalidPolicy("retention_ms %d < -1", p.RetentionMs)
	case p.TTLMs < 0:
		return invalidPolicy("ttl_ms %d < 0", p.TTLMs)
	case p.MaxMessageBytes > MaxMessageBytesLimit:
		return invalidPolicy("max_message_bytes %d > %d", p.MaxMessageBytes, MaxMessageBytesLimit)
	case p.OffloadThresholdBytes < -1:
		return invalidPolicy("offload_threshold_bytes %d < -1", p.OffloadThresholdBytes)
	case p.OffloadAgeMs < -1:
		return invalidPolicy("offload_age_ms %d < -1", p.OffloadAgeMs)
	case p.OffloadDeletionLagMs < 0:
		return invalidPolicy("offload_deletion_lag_ms %d < 0", p.OffloadDeletionLagMs)
	case p.BacklogQuotaBytes < 0:
		return invalidPolicy("backlog_quota_bytes %d < 0", p.BacklogQuotaBytes)
	case p.BacklogQuotaPolicy != "" && p.BacklogQuotaPolicy != QuotaProducerException && p.BacklogQuotaPolicy != QuotaConsumerBacklogEviction:
		return invalidPolicy("backlog_quota_policy %q", p.BacklogQuotaPolicy)
	case p.CompactionThresholdBytes < 0:
		return invalidPolicy("compaction_threshold_bytes %d < 0", p.CompactionThresholdBytes)
	case p.DispatchRateMsgs < 0 || p.DispatchRateBytes < 0:
		return invalidPolicy("dispatch rates %d msg/s, %d B/s: want 0 (none) or positive", p.DispatchRateMsgs, p.DispatchRateBytes)
	case p.PublishRateMsgs < 0 || p.PublishRateBytes < 0:
		return invalidPolicy("publish rates %d msg/s, %d B/s: want 0 (none) or positive", p.PublishRateMsgs, p.PublishRateBytes)
	case p.SchemaCompatibility != "" && !slices.Contains(SchemaStrategies, p.SchemaCompatibility):
		return invalidPolicy("schema_compatibility %q: want one of %v", p.SchemaCompatibility, SchemaStrategies)
	}
	return nil
}

func (p NamespacePolicy) validateQuorums() error {
	e, qw, qa := p.Ensemble, p.WriteQuorum, p.AckQuorum
	if e == 0 && qw == 0 && qa == 0 {
		return nil
	}
	if qa < 1 || qw < qa || e < qw || e > MaxEnsemble {
		return invalidPolicy("want %d >= E >= Qw >= Qa >= 1, got E=%d Qw=%d Qa=%d", MaxEnsemble, e, qw, qa)
	}
	return nil
}

func invalidPolicy(format string, args ...any) error {
	return &errcode.Error{Code: errcode.InvalidPolicy, Message: "metadata: " + fmt.Sprintf(format, args...)}
}

// GetNamespacePolicy reads a namespace's policy ("tenant/namespace"), or
// DefaultNamespacePolicy() (Version 0) when none is stored.
func (s *Store) GetNamespacePolicy(ctx context.Context, ns string) (NamespacePolicy, error) {
	if err := checkNamespace(ns); err != nil {
		return NamespacePolicy{}, err
	}
	kv, err := s.get(ctx, "get namespace policy", s.keys.policy(ns))
	if err != nil {
		return NamespacePolicy{}, err
	}
	if kv == nil {
		return DefaultNamespacePolicy(), nil
	}
	var p NamespacePolicy
	if err := decode(kv, &p); err != nil {
		return NamespacePolicy{}, err
	}
	p.Version = kv.ModRevision
	return p, nil
}

// ListNamespaces returns, sorted, the namespaces ("tenant/namespace") that
// have a stored policy or at least one topic: every tenant's, or tenant's
// when it is not empty.
func (s *Store) ListNamespaces(ctx context.Context, tenant string) ([]string, error) {
	under := ""
	if tenant != "" {
		if err := topic.CheckTenant(tenant); err != nil {
			return nil, err
		}
		under = tenant + "/"
	}
	seen := map[string]bool{}
	for _, dir := range []string{s.keys.policies(), s.keys.topics("")} {
		kvs, err := s.list(ctx, "list namespaces", dir+under)
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			parts := strings.SplitN(strings.TrimPrefix(string(kv.Key), dir), "/", 3)
			if len(parts) >= 2 {
				seen[parts[0]+"/"+parts[1]] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// DeleteNamespace deletes the policy of ns (and the policies set on its
// topics before they were used), which must have no topic
// (ErrNamespaceNotEmpty otherwise; the check and the delete are one etcd
// transaction, so a topic created meanwhile makes it fail). A namespace
// with neither a policy nor a topic is ErrNamespaceNotFound.
func (s *Store) DeleteNamespace(ctx context.Context, ns string) error {
	if err := checkNamespace(ns); err != nil {
		return err
	}
	topics := s.keys.topics(ns)
	noTopic := clientv3.Compare(clientv3.CreateRevision(topics), "=", 0).WithRange(clientv3.GetPrefixRangeEnd(topics))
	resp, err := s.txn(ctx, "delete namespace", []clientv3.Cmp{noTopic},
		[]clientv3.Op{clientv3.OpDelete(s.keys.policy(ns)), clientv3.OpDelete(s.keys.topicPolicies(ns), clientv3.WithPrefix()),
			clientv3.OpDelete(s.keys.permissions(ns), clientv3.WithPrefix()),
			clientv3.OpDelete(s.keys.topicPermissions(ns), clientv3.WithPrefix()),
			clientv3.OpDelete(s.keys.schemas(ns), clientv3.WithPrefix())}, nil)
	switch {
	case err != nil:
		return err
	case !resp.Succeeded:
		return fmt.Errorf("%w: %s", ErrNamespaceNotEmpty, ns)
	case resp.Responses[0].GetResponseDeleteRange().GetDeleted() == 0:
		return fmt.Errorf("%w: %s", ErrNamespaceNotFound, ns)
	}
	return nil
}

// SetNamespacePolicy validates p and stores it. With p.Version set (as read
// by GetNamespacePolicy) the write is a compare-and-swap on it
// (ErrBadVersion when the policy changed meanwhile); with Version 0 it
// replaces whatever is stored.
func (s *Store) SetNamespacePolicy(ctx context.Context, ns string, p NamespacePolicy) error {
	if err := checkNamespace(ns); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Version != 0 {
		_, err := s.casPut(ctx, "set namespace policy", s.keys.policy(ns), p, p.Version)
		return err
	}
	return s.put(ctx, "set namespace policy", s.keys.policy(ns), p)
}
