package client

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Admin manages topics, namespaces and subscriptions. Every call is bounded
// by ctx and by the client's OperationTimeout; cancelling ctx abandons the
// call (the server may still apply it).
type Admin struct{ c *Client }

// Admin returns the client's admin interface.
func (c *Client) Admin() *Admin { return &Admin{c: c} }

// TopicInfo describes a topic.
type TopicInfo struct {
	Topic      string
	Partitions int // 0: not partitioned
}

// CreateTopic creates topic with partitions partitions (0: a non-partitioned
// topic). It fails with ErrTopicExists when the topic exists.
func (a *Admin) CreateTopic(ctx context.Context, topicName string, partitions int) error {
	name, err := topic.Canonical(topicName)
	if err != nil {
		return err
	}
	if partitions < 0 || int64(partitions) > math.MaxUint32 {
		// Past 32 bits the count would wrap on the wire (the node
		// enforces its own, much lower, maximum).
		return invalidArg("partitions %d: want 0 (not partitioned) or a positive count", partitions)
	}
	return a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		_, err := b.CreateTopic(ctx, &servingpb.CreateTopicRequest{Topic: name, Partitions: uint32(partitions)})
		return err
	})
}

// AddPartitions raises partitioned topic's partition count to partitions
// (Pulsar's update-partitioned-topic, Kafka's --alter --partitions). The
// topic's subscriptions are created on the new partitions at their start,
// and producers and consumers take the new partitions on within
// PartitionsRefresh. Keys move: a key's partition is its hash modulo the
// count. Only increases are allowed (ErrInvalidArgument otherwise; a
// topic that is not partitioned cannot be made so); a concurrent change
// fails with a BadVersion error, to be retried, and records left over where
// the new partitions go with ErrTopicExists.
func (a *Admin) AddPartitions(ctx context.Context, topicName string, partitions int) error {
	name, err := topic.Canonical(topicName)
	if err != nil {
		return err
	}
	if partitions < 1 || int64(partitions) > math.MaxUint32 {
		return invalidArg("partitions %d: want a positive count", partitions)
	}
	return a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		_, err := b.AddPartitions(ctx, &servingpb.AddPartitionsRequest{Topic: name, Partitions: uint32(partitions)})
		return err
	})
}

// DeleteTopic deletes topic (every partition); force deletes it even when
// subscriptions have a backlog.
func (a *Admin) DeleteTopic(ctx context.Context, topicName string, force bool) error {
	name, err := topic.Canonical(topicName)
	if err != nil {
		return err
	}
	return a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		_, err := b.DeleteTopic(ctx, &servingpb.DeleteTopicRequest{Topic: name, Force: force})
		return err
	})
}

// ListTopics lists the topics of namespace (tenant/namespace; "" lists all).
func (a *Admin) ListTopics(ctx context.Context, namespace string) ([]TopicInfo, error) {
	if namespace != "" {
		if _, _, err := topic.ParseNamespace(namespace); err != nil {
			return nil, err
		}
	}
	var out []TopicInfo
	err := a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.ListTopics(ctx, &servingpb.ListTopicsRequest{Namespace: namespace})
		if err != nil {
			return err
		}
		out = out[:0]
		for _, t := range resp.GetTopics() {
			out = append(out, TopicInfo{Topic: t.GetTopic(), Partitions: int(t.GetPartitions())})
		}
		return nil
	})
	return out, err
}

// ListNamespaces lists, sorted, the namespaces (tenant/namespace) that have
// a policy or a topic: of tenant, or of every tenant when tenant is "".
func (a *Admin) ListNamespaces(ctx context.Context, tenant string) ([]string, error) {
	if tenant != "" {
		if err := topic.CheckTenant(tenant); err != nil {
			return nil, err
		}
	}
	var out []string
	err := a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.ListNamespaces(ctx, &servingpb.ListNamespacesRequest{Tenant: tenant})
		if err != nil {
			return err
		}
		out = resp.GetNamespaces()
		return nil
	})
	return out, err
}

// DeleteNamespace deletes a namespace (tenant/namespace), that is its
// policy, as Pulsar's delete namespace: ErrNamespaceNotEmpty while it has
// a topic (delete those first), ErrNamespaceNotFound when it has neither a
// policy nor a topic.
func (a *Admin) DeleteNamespace(ctx context.Context, namespace string) error {
	if _, _, err := topic.ParseNamespace(namespace); err != nil {
		return err
	}
	return a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		_, err := b.DeleteNamespace(ctx, &servingpb.DeleteNamespaceRequest{Namespace: namespace})
		return err
	})
}

// GetTopic describes topic; ErrTopicNotFound when it does not exist.
func (a *Admin) GetTopic(ctx context.Context, topicName string) (TopicInfo, error) {
	name, err := topic.Canonical(topicName)
	if err != nil {
		return TopicInfo{}, err
	}
	var info TopicInfo
	err = a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.GetTopic(ctx, &servingpb.GetTopicRequest{Topic: name})
		if err != nil {
			return err
		}
		info = TopicInfo{Topic: resp.GetTopic().GetTopic(), Partitions: int(resp.GetTopic().GetPartitions())}
		return nil
	})
	return info, err
}

// TopicStats are the statistics of one topic (or partition).
type TopicStats struct {
	Topic          string              `json:"topic"`
	Owner          string              `json:"owner"`
	MessagesIn     uint64              `json:"messages_in"`
	BytesIn        uint64              `json:"bytes_in"`
	StorageBytes   uint64              `json:"storage_bytes"`
	OffloadedBytes uint64              `json:"offloaded_bytes"`
	Producers      int                 `json:"producers"`
	Ledgers        []LedgerStats       `json:"ledgers"`
	Subscriptions  []SubscriptionStats `json:"subscriptions"`
	// CompactionHorizon is the last message of the last compaction (nil:
	// never compacted); CompactedMessages what it kept.
	CompactionHorizon *MessageID `json:"compaction_horizon,omitempty"`
	CompactedMessages uint64     `json:"compacted_messages,omitempty"`
	// Terminated is set once the topic is terminated: its last message
	// (Entry -1: none).
	Terminated *MessageID `json:"terminated,omitempty"`
}

// LedgerStats describe one ledger of a topic.
type LedgerStats struct {
	Ledger    uint64 `json:"ledger"`
	Entries   int64  `json:"entries"`
	Bytes     uint64 `json:"bytes"`
	State     string `json:"state"`
	Offloaded bool   `json:"offloaded"`
}

// SubscriptionStats describe one subscription of a topic.
type SubscriptionStats struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Backlog counts entries, not messages: the producer batches after the
	// mark-delete position not yet acknowledged in full (as Pulsar's
	// msgBacklog). With batching, the messages are up to the producer's
	// batch size times more.
	Backlog    uint64    `json:"backlog"`
	Consumers  int       `json:"consumers"`
	MarkDelete MessageID `json:"mark_delete"`
	// Unacked counts messages delivered to a consumer and not yet
	// acknowledged.
	Unacked uint64 `json:"unacked"`
	// BacklogBytes estimates the bytes after the mark-delete position, as
	// Pulsar's backlogSize does: whole ledgers by their size, the rest of
	// the mark-delete position's ledger by its mean entry size. Entries
	// acknowledged individually past that position still count.
	BacklogBytes uint64 `json:"backlog_bytes"`
	// ActiveConsumer names the consumer a Failover subscription delivers
	// this partition to (empty for the other types).
	ActiveConsumer string `json:"active_consumer,omitempty"`
	// Delayed counts the entries a Shared or KeyShared subscription holds
	// back until their delivery time (ProducerMessage.DeliverAt); they are
	// part of Backlog.
	Delayed uint64 `json:"delayed,omitempty"`
	// OldestUnacked is the publish time of the oldest message the
	// subscription has not acknowledged, as the owner measured it at its
	// last backlog check (every 10 s by default); zero with no backlog or
	// not measured yet. time.Since(OldestUnacked) is the backlog's age:
	// the lag in time.
	OldestUnacked time.Time `json:"oldest_unacked,omitzero"`
}

// TopicStats returns the statistics of one topic or partition, from its
// owner. For a partitioned topic, ask for each partition
// (tenant/ns/name-partition-i).
func (a *Admin) TopicStats(ctx context.Context, topicName string) (*TopicStats, error) {
	name, err := topic.Canonical(topicName)
	if err != nil {
		return nil, err
	}
	var st *TopicStats
	err = a.c.ownerNode(ctx, name, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.TopicStats(ctx, &servingpb.TopicStatsRequest{Topic: name})
		if err != nil {
			return err
		}
		st = statsFromProto(resp)
		return nil
	})
	return st, err
}

func statsFromProto(r *servingpb.TopicStatsResponse) *TopicStats {
	st := &TopicStats{Topic: r.GetTopic(), Owner: r.GetOwner(), MessagesIn: r.GetMessagesIn(), BytesIn: r.GetBytesIn(),
		StorageBytes: r.GetStorageBytes(), OffloadedBytes: r.GetOffloadedBytes(), Producers: int(r.GetProducers()),
		Ledgers: []LedgerStats{}, Subscriptions: []SubscriptionStats{}, CompactedMessages: r.GetCompactedMessages()}
	if h := r.GetCompactionHorizon(); h != nil {
		id := idFromProto(h, 0)
		st.CompactionHorizon = &id
	}
	if p := r.GetTerminated(); p != nil {
		id := idFromProto(p, 0)
		st.Terminated = &id
	}
	for _, l := range r.GetLedgers() {
		st.Ledgers = append(st.Ledgers, LedgerStats{Ledger: l.GetLedger(), Entries: l.GetEntries(), Bytes: l.GetBytes(), State: l.GetState(), Offloaded: l.GetOffloaded()})
	}
	for _, s := range r.GetSubscriptions() {
		st.Subscriptions = append(st.Subscriptions, SubscriptionStats{Name: s.GetName(), Type: SubscriptionType(s.GetType()).String(),
			Backlog: s.GetBacklog(), Consumers: int(s.GetConsumers()), MarkDelete: idFromProto(s.GetMarkDelete(), 0), Unacked: s.GetUnacked(), BacklogBytes: s.GetBacklogBytes(), Delayed: s.GetDelayed(),
			ActiveConsumer: s.GetActiveConsumer()})
		if ns := s.GetOldestUnackedPublishTimeUnixNano(); ns != 0 {
			st.Subscriptions[len(st.Subscriptions)-1].OldestUnacked = time.Unix(0, ns)
		}
	}
	return st
}

// Forever is the retention that keeps data forever.
const Forever time.Duration = -1

// NamespacePolicy is the policy of a namespace. Durations are kept in
// milliseconds on the wire.
type NamespacePolicy struct {
	// Ensemble, WriteQuorum, AckQuorum: replication (0 = cluster default).
	Ensemble    int `json:"ensemble"`
	WriteQuorum int `json:"write_quorum"`
	AckQuorum   int `json:"ack_quorum"`
	// Retention keeps consumed data this long; 0 deletes it once every
	// subscription consumed it; negative (Forever) keeps it forever.
	Retention time.Duration `json:"retention"`
	// TTL acknowledges messages older than this on every subscription; 0: off.
	TTL             time.Duration `json:"ttl"`
	MaxMessageBytes uint64        `json:"max_message_bytes"`
	// OffloadThresholdBytes offloads closed ledgers once the topic's
	// bookie-resident bytes exceed it (-1: never on size; 0: at once).
	OffloadThresholdBytes int64 `json:"offload_threshold_bytes"`
	// OffloadAge offloads closed ledgers this old (negative: never on age; 0: at once).
	OffloadAge time.Duration `json:"offload_age"`
	// OffloadDeletionLag deletes a ledger from bookies this long after its offload.
	OffloadDeletionLag time.Duration `json:"offload_deletion_lag"`
	// BacklogQuotaBytes bounds the backlog of each durable subscription, in
	// bytes (0: no quota), as Pulsar's backlog quota; BacklogQuotaPolicy
	// says what happens past it (default ProducerException).
	BacklogQuotaBytes  int64              `json:"backlog_quota_bytes"`
	BacklogQuotaPolicy BacklogQuotaPolicy `json:"backlog_quota_policy"`
	// DispatchRateMsgs and DispatchRateBytes bound how fast each durable
	// subscription of each topic (each partition) is sent messages, per
	// second (0: no bound), as Pulsar's subscription dispatch rate: a
	// backlog drains no faster than the systems behind the consumers can
	// take it. An idle subscription may receive up to a second's worth at
	// once; whole batches go out, paid for after they are sent.
	DispatchRateMsgs  int64 `json:"dispatch_rate_msgs"`
	DispatchRateBytes int64 `json:"dispatch_rate_bytes"`
	// PublishRateMsgs and PublishRateBytes bound how fast each topic (each
	// partition) takes messages from its producers, per second (0: no
	// bound), as Pulsar's publish rate and Kafka's producer quotas: past
	// it the node stops reading the producers' batches for a while, so
	// sends wait (and, with the SDK's pending limits, block) instead of
	// failing.
	PublishRateMsgs  int64 `json:"publish_rate_msgs"`
	PublishRateBytes int64 `json:"publish_rate_bytes"`
	// CompactionThresholdBytes compacts each topic (each partition) once
	// the bytes of its ledgers after its last compaction reach it (0: only
	// when asked, Admin.CompactTopic), as Pulsar's compaction threshold.
	CompactionThresholdBytes int64 `json:"compaction_threshold_bytes"`
	// SchemaCompatibility is how a topic's new schema version must relate
	// to the earlier ones: one of SchemaStrategies ("" is FULL, Pulsar's
	// default). SchemaValidationEnforced refuses producers without a schema
	// on topics that have one (ErrIncompatibleSchema);
	// SchemaAutoUpdateDisabled refuses producers' new schemas, so that
	// only Admin.CreateSchema adds versions.
	SchemaCompatibility      string `json:"schema_compatibility"`
	SchemaValidationEnforced bool   `json:"schema_validation_enforced"`
	SchemaAutoUpdateDisabled bool   `json:"schema_auto_update_disabled"`
}

// SchemaStrategies are the schema compatibility strategies, as Pulsar's:
// a new version of a topic's schema must be readable by the last one
// (FORWARD), able to read the last one's messages (BACKWARD), both (FULL),
// the same against every earlier version (the _TRANSITIVE ones), or
// anything (ALWAYS_COMPATIBLE) or nothing new at all (ALWAYS_INCOMPATIBLE).
var SchemaStrategies = []string{"ALWAYS_COMPATIBLE", "ALWAYS_INCOMPATIBLE", "BACKWARD", "FORWARD", "FULL",
	"BACKWARD_TRANSITIVE", "FORWARD_TRANSITIVE", "FULL_TRANSITIVE"}

// BacklogQuotaPolicy is what a namespace does when a subscription's
// backlog is over its quota, checked every few seconds by each topic.
type BacklogQuotaPolicy string

// Backlog quota policies.
const (
	// ProducerException fails sends with ErrBacklogQuotaExceeded until the
	// backlog is under the quota again: nothing is lost, producers wait.
	ProducerException BacklogQuotaPolicy = "producer_exception"
	// ConsumerBacklogEviction skips the oldest messages of the
	// subscriptions over the quota (unacknowledged, as a TTL would):
	// producers go on, slow subscriptions lose their oldest backlog.
	ConsumerBacklogEviction BacklogQuotaPolicy = "consumer_backlog_eviction"
)

func durationMs(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return d.Milliseconds()
}

func msDuration(ms int64) time.Duration {
	if ms < 0 {
		return Forever
	}
	return time.Duration(ms) * time.Millisecond
}

func (p NamespacePolicy) proto() *servingpb.NamespacePolicy {
	pb := &servingpb.NamespacePolicy{
		Ensemble: uint32(p.Ensemble), WriteQuorum: uint32(p.WriteQuorum), AckQuorum: uint32(p.AckQuorum),
		RetentionMs: durationMs(p.Retention), TtlMs: max(0, p.TTL.Milliseconds()), MaxMessageBytes: p.MaxMessageBytes,
		OffloadThresholdBytes: p.OffloadThresholdBytes, OffloadAgeMs: durationMs(p.OffloadAge),
		OffloadDeletionLagMs: max(0, p.OffloadDeletionLag.Milliseconds()),
		BacklogQuotaBytes:    p.BacklogQuotaBytes, BacklogQuotaPolicy: servingpb.BacklogQuotaPolicy_PRODUCER_EXCEPTION,
		DispatchRateMsgs: p.DispatchRateMsgs, DispatchRateBytes: p.DispatchRateBytes,
		PublishRateMsgs: p.PublishRateMsgs, PublishRateBytes: p.PublishRateBytes,
		CompactionThresholdBytes: p.CompactionThresholdBytes, SchemaCompatibility: p.SchemaCompatibility,
		SchemaValidationEnforced: p.SchemaValidationEnforced, SchemaAutoUpdateDisabled: p.SchemaAutoUpdateDisabled,
	}
	if p.BacklogQuotaPolicy == ConsumerBacklogEviction {
		pb.BacklogQuotaPolicy = servingpb.BacklogQuotaPolicy_CONSUMER_BACKLOG_EVICTION
	}
	return pb
}

func policyFromProto(p *servingpb.NamespacePolicy) NamespacePolicy {
	pol := NamespacePolicy{
		Ensemble: int(p.GetEnsemble()), WriteQuorum: int(p.GetWriteQuorum()), AckQuorum: int(p.GetAckQuorum()),
		Retention: msDuration(p.GetRetentionMs()), TTL: msDuration(p.GetTtlMs()), MaxMessageBytes: p.GetMaxMessageBytes(),
		OffloadThresholdBytes: p.GetOffloadThresholdBytes(), OffloadAge: msDuration(p.GetOffloadAgeMs()),
		OffloadDeletionLag: msDuration(p.GetOffloadDeletionLagMs()),
		BacklogQuotaBytes:  p.GetBacklogQuotaBytes(), BacklogQuotaPolicy: ProducerException,
		DispatchRateMsgs: p.GetDispatchRateMsgs(), DispatchRateBytes: p.GetDispatchRateBytes(),
		PublishRateMsgs: p.GetPublishRateMsgs(), PublishRateBytes: p.GetPublishRateBytes(),
		CompactionThresholdBytes: p.GetCompactionThresholdBytes(), SchemaCompatibility: p.GetSchemaCompatibility(),
		SchemaValidationEnforced: p.GetSchemaValidationEnforced(), SchemaAutoUpdateDisabled: p.GetSchemaAutoUpdateDisabled(),
	}
	if p.GetBacklogQuotaPolicy() == servingpb.BacklogQuotaPolicy_CONSUMER_BACKLOG_EVICTION {
		pol.BacklogQuotaPolicy = ConsumerBacklogEviction
	}
	return pol
}

// checkPolicyDurations refuses negative durations other than Forever where
// Forever means something (retention, offload age), and any negative one
// elsewhere (TTL, offload deletion lag), instead of quietly storing a
// different value: a deletion lag of -1 read as "never" would otherwise
// delete offloaded ledgers from the bookies at once.
func checkPolicyDurations(retention, offloadAge, ttl, deletionLag time.Duration) error {
	switch {
	case retention < 0 && retention != Forever:
		return invalidArg("retention %v: want 0 or more, or Forever (-1)", retention)
	case offloadAge < 0 && offloadAge != Forever:
		return invalidArg("offload age %v: want 0 or more, or Forever (-1: never by age)", offloadAge)
	case ttl < 0:
		return invalidArg("TTL %v: want 0 (none) or more", ttl)
	case deletionLag < 0:
		return invalidArg("offload deletion lag %v: want 0 or more", deletionLag)
	}
	return nil
}

func (p NamespacePolicy) validate() error {
	if err := checkPolicyDurations(p.Retention, p.OffloadAge, p.TTL, p.OffloadDeletionLag); err != nil {
		return err
	}
	switch {
	case p.Ensemble < 0 || p.WriteQuorum < 0 || p.AckQuorum < 0:
		return invalidArg("quorum sizes must not be negative")
	case p.WriteQuorum > 0 && p.Ensemble > 0 && p.WriteQuorum > p.Ensemble:
		return invalidArg("write quorum %d over ensemble %d", p.WriteQuorum, p.Ensemble)
	case p.AckQuorum > 0 && p.WriteQuorum > 0 && p.AckQuorum > p.WriteQuorum:
		return invalidArg("ack quorum %d over write quorum %d", p.AckQuorum, p.WriteQuorum)
	case p.OffloadThresholdBytes < -1:
		return invalidArg("offload threshold must be -1 or more")
	case p.BacklogQuotaBytes < 0:
		return invalidArg("backlog quota must be 0 (none) or positive")
	case p.BacklogQuotaPolicy != "" && p.BacklogQuotaPolicy != ProducerException && p.BacklogQuotaPolicy != ConsumerBacklogEviction:
		return invalidArg("backlog quota policy %q: want %s or %s", p.BacklogQuotaPolicy, ProducerException, ConsumerBacklogEviction)
	case p.DispatchRateMsgs < 0 || p.DispatchRateBytes < 0:
		return invalidArg("dispatch rates must be 0 (none) or positive")
	case p.PublishRateMsgs < 0 || p.PublishRateBytes < 0:
		return invalidArg("publish rates must be 0 (none) or positive")
	case p.CompactionThresholdBytes < 0:
		return invalidArg("compaction threshold must be 0 (none) or positive")
	case p.SchemaCompatibility != "" && !slices.Contains(SchemaStrategies, p.SchemaCompatibility):
		return invalidArg("schema compatibility %q: want one of %v", p.SchemaCompatibility, SchemaStrategies)
	}
	return nil
}

// GetNamespacePolicy returns the policy of namespace (tenant/namespace).
func (a *Admin) GetNamespacePolicy(ctx context.Context, namespace string) (NamespacePolicy, error) {
	if _, _, err := topic.ParseNamespace(namespace); err != nil {
		return NamespacePolicy{}, err
	}
	var pol NamespacePolicy
	err := a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.GetNamespacePolicy(ctx, &servingpb.GetNamespacePolicyRequest{Namespace: namespace})
		if err != nil {
			return err
		}
		pol = policyFromProto(resp.GetPolicy())
		return nil
	})
	return pol, err
}

// SetNamespacePolicy replaces the policy of namespace (creating the
// namespace when it does not exist).
func (a *Admin) SetNamespacePolicy(ctx context.Context, namespace string, p NamespacePolicy) error {
	if _, _, err := topic.ParseNamespace(namespace); err != nil {
		return err
	}
	if err := p.validate(); err != nil {
		return err
	}
	return a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		_, err := b.SetNamespacePolicy(ctx, &servingpb.SetNamespacePolicyRequest{Namespace: namespace, Policy: p.proto()})
		return err
	})
}

// CursorTarget is where ResetCursor moves a subscription: set exactly one
// field.
type CursorTarget struct {
	// ID: redeliver from this message on.
	ID *MessageID
	// Time: from the first message published at or after it.
	Time time.Time
	// Earliest: from the oldest message retained.
	Earliest bool
	// Latest: after the last message written, which acknowledges the whole
	// backlog (Pulsar's clear-backlog).
	Latest bool
}

func (to CursorTarget) set() int {
	n := 0
	for _, set := range []bool{to.ID != nil, !to.Time.IsZero(), to.Earliest, to.Latest} {
		if set {
			n++
		}
	}
	return n
}

// ResetResult is the position ResetCursor resolved, for one partition.
type ResetResult struct {
	Topic      string    `json:"topic"`
	Position   MessageID `json:"position"`
	EndOfTopic bool      `json:"end_of_topic"`
	Executed   bool      `json:"executed"`
}

// ResetCursor resolves the target of subscription on topic (every partition
// of a partitioned topic, in order; a message id only on its own
// partition) and, when execute is set, moves the cursor there. Without
// execute nothing changes. With it, the subscription's consumers are
// disconnected, as in Pulsar: they drop what they had buffered and
// subscribe again at the new position. A message id whose ledger is not
// the topic's fails with ErrInvalidArgument; one older than every ledger
// retained means the oldest message retained.
func (a *Admin) ResetCursor(ctx context.Context, topicName, subscription string, to CursorTarget, execute bool) ([]ResetResult, error) {
	if to.set() != 1 {
		return nil, invalidArg("reset cursor: give one of a message id, a time, earliest or latest")
	}
	topics, err := a.partitionNames(ctx, topicName)
	if err != nil {
		return nil, err
	}
	if to.ID != nil && (to.ID.Partition < 0 || int(to.ID.Partition) >= len(topics)) {
		return nil, invalidArg("reset cursor: message id %v is of partition %d; %s has %d", *to.ID, to.ID.Partition, topicName, len(topics))
	}
	out := make([]ResetResult, 0, len(topics))
	for i, t := range topics {
		req := &servingpb.ResetCursorRequest{Topic: t, Subscription: subscription, Execute: execute}
		if to.ID != nil {
			if len(topics) > 1 && int(to.ID.Partition) != i {
				continue
			}
			req.To = &servingpb.ResetCursorRequest_MessageId{MessageId: to.ID.proto()}
		} else if to.Earliest {
			req.To = &servingpb.ResetCursorRequest_Edge{Edge: servingpb.InitialPosition_EARLIEST}
		} else if to.Latest {
			req.To = &servingpb.ResetCursorRequest_Edge{Edge: servingpb.InitialPosition_LATEST}
		} else {
			req.To = &servingpb.ResetCursorRequest_TimeUnixNano{TimeUnixNano: to.Time.UnixNano()}
		}
		var res ResetResult
		err := a.c.ownerNode(ctx, t, func(ctx context.Context, b servingpb.BrokerClient) error {
			resp, err := b.ResetCursor(ctx, req)
			if err != nil {
				return err
			}
			res = ResetResult{Topic: t, Position: idFromProto(resp.GetPosition(), int32(i)), EndOfTopic: resp.GetEndOfTopic(), Executed: execute}
			return nil
		})
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

// CreateSubscription creates a durable subscription on topic (every
// partition) without a consumer, starting at the oldest message retained
// (Earliest) or after the last one (Latest): from then on the topic keeps
// every message the subscription has not acknowledged, whether or not a
// consumer is attached. A topic that does not exist is created, as a
// consumer's subscribe would. When the subscription exists on the topic, or
// on some of its partitions, it is created on the others (completing an
// earlier call that failed halfway) and the error is ErrSubscriptionExists,
// naming where it existed.
func (a *Admin) CreateSubscription(ctx context.Context, topicName, subscription string, at InitialPosition) error {
	if at != Earliest && at != Latest {
		return invalidArg("create subscription: initial position %d", at)
	}
	if err := topic.CheckSubscription(subscription); err != nil {
		return err // before the lookup, which would create the topic
	}
	topics, err := a.partitionNames(ctx, topicName)
	if err != nil {
		return err
	}
	var existed []string
	for _, t := range topics {
		// As Pulsar's: a subscription may be made before the topic's
		// first message, on a cluster that creates topics on first use.
		err := a.c.ownerNodeOf(ctx, t, false, func(ctx context.Context, b servingpb.BrokerClient) error {
			_, err := b.CreateSubscription(ctx, &servingpb.CreateSubscriptionRequest{Topic: t, Subscription: subscription, InitialPosition: servingpb.InitialPosition(at)})
			return err
		})
		switch {
		case errors.Is(err, ErrSubscriptionExists):
			existed = append(existed, t)
		case err != nil:
			return err
		}
	}
	if len(existed) > 0 {
		return errcode.New(errcode.SubscriptionExists, "subscription %q exists on %s", subscription, strings.Join(existed, ", "))
	}
	return nil
}

// DeleteSubscription deletes subscription on topic (every partition).
func (a *Admin) DeleteSubscription(ctx context.Context, topicName, subscription string) error {
	topics, err := a.partitionNames(ctx, topicName)
	if err != nil {
		return err
	}
	for _, t := range topics {
		err := a.c.ownerNode(ctx, t, func(ctx context.Context, b servingpb.BrokerClient) error {
			_, err := b.DeleteSubscription(ctx, &servingpb.DeleteSubscriptionRequest{Topic: t, Subscription: subscription})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// TriggerOffload asks topic's owner to offload its closed ledgers now and
// returns how many it offloaded.
func (a *Admin) TriggerOffload(ctx context.Context, topicName string) (int, error) {
	name, err := topic.Canonical(topicName)
	if err != nil {
		return 0, err
	}
	var n int
	err = a.c.ownerNode(ctx, name, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.TriggerOffload(ctx, &servingpb.TriggerOffloadRequest{Topic: name})
		if err != nil {
			return err
		}
		n = int(resp.GetLedgersOffloaded())
		return nil
	})
	return n, err
}

// PartitionNames returns the names a topic is served under: its partitions,
// or the topic itself when it is not partitioned.
func (a *Admin) PartitionNames(ctx context.Context, topicName string) ([]string, error) {
	return a.partitionNames(ctx, topicName)
}

func (a *Admin) partitionNames(ctx context.Context, topicName string) ([]string, error) {
	return a.c.partitionNames(ctx, topicName)
}

// UnloadTopic unloads a topic (every partition of a partitioned one) from
// its owner gracefully, as Pulsar's topics unload: cursors are flushed,
// the ledger closed and ownership released, and producers and consumers
// reconnect on their own to the node the placement picks (perhaps the
// same one), resending what was not acknowledged.
func (a *Admin) UnloadTopic(ctx context.Context, topicName string) error {
	parts, err := a.c.partitionNames(ctx, topicName)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := a.c.ownerNode(ctx, p, func(ctx context.Context, b servingpb.BrokerClient) error {
			_, err := b.UnloadTopic(ctx, &servingpb.UnloadTopicRequest{Topic: p})
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// ClusterNode is a serving node registered now.
type ClusterNode struct {
	ID       string    `json:"id"`
	GRPCAddr string    `json:"grpc_addr"`
	HTTPAddr string    `json:"http_addr"`
	Started  time.Time `json:"started"`
	// OwnedTopics counts the topics it owns, partitions one by one.
	OwnedTopics int `json:"owned_topics"`
}

// ClusterBookie is a bookie registered now.
type ClusterBookie struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	// ReadOnly: its disk is nearly full; it takes no new entries.
	ReadOnly bool `json:"read_only"`
}

// Cluster lists the serving nodes registered now, with the topics each
// owns, and the bookies registered now (Pulsar's brokers list and
// list-bookies).
func (a *Admin) Cluster(ctx context.Context) ([]ClusterNode, []ClusterBookie, error) {
	var (
		nodes   []ClusterNode
		bookies []ClusterBookie
	)
	err := a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		r, err := b.ListCluster(ctx, &servingpb.ListClusterRequest{})
		if err != nil {
			return err
		}
		nodes, bookies = nil, nil
		for _, n := range r.GetNodes() {
			nodes = append(nodes, ClusterNode{ID: n.GetId(), GRPCAddr: n.GetGrpcAddr(), HTTPAddr: n.GetHttpAddr(),
				Started: time.Unix(0, n.GetStartedAtUnixNano()), OwnedTopics: int(n.GetOwnedTopics())})
		}
		for _, bk := range r.GetBookies() {
			bookies = append(bookies, ClusterBookie{ID: bk.GetId(), Addr: bk.GetAddr(), ReadOnly: bk.GetReadOnly()})
		}
		return nil
	})
	return nodes, bookies, err
}

// BookieStatus is a bookie as the cluster sees it: registered (live),
// draining (being decommissioned), read-only (its disk nearly full), and
// how many ledgers still name it.
type BookieStatus struct {
	ID          string `json:"id"`
	Addr        string `json:"addr,omitempty"`
	Registered  bool   `json:"registered"`
	Draining    bool   `json:"draining"`
	ReadOnly    bool   `json:"read_only"`
	Ledgers     int    `json:"ledgers"`
	OpenLedgers int    `json:"open_ledgers"`
}

// DrainBookie starts decommissioning a bookie (BookKeeper's
// decommissionbookie): it gets no new ledgers, and the auditing node
// copies every closed ledger off it while it still serves reads. Once
// Bookies shows it named by no ledger, stop it. undo gives it new ledgers
// again.
func (a *Admin) DrainBookie(ctx context.Context, bookie string, undo bool) error {
	return a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		_, err := b.DrainBookie(ctx, &servingpb.DrainBookieRequest{Bookie: bookie, Undo: undo})
		return err
	})
}

// Bookies lists every bookie registered, draining, or named by a ledger,
// with the ledgers that name it. It reads every ledger's metadata.
func (a *Admin) Bookies(ctx context.Context) ([]BookieStatus, error) {
	var out []BookieStatus
	err := a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		r, err := b.ListBookies(ctx, &servingpb.ListBookiesRequest{})
		if err != nil {
			return err
		}
		out = nil
		for _, s := range r.GetBookies() {
			out = append(out, BookieStatus{ID: s.GetId(), Addr: s.GetAddr(), Registered: s.GetRegistered(), Draining: s.GetDraining(), ReadOnly: s.GetReadOnly(),
				Ledgers: int(s.GetLedgers()), OpenLedgers: int(s.GetOpenLedgers())})
		}
		return nil
	})
	return out, err
}

// TerminateTopic terminates a topic (every partition of a partitioned
// one), as Pulsar's terminate: it takes no more messages (sends and new
// producers fail with ErrTopicTerminated), and its consumers' Receive
// answers ErrTopicTerminated once they have had every message. It cannot
// be undone. It answers each partition's last message (Entry -1: none).
func (a *Admin) TerminateTopic(ctx context.Context, topicName string) ([]MessageID, error) {
	parts, err := a.c.partitionNames(ctx, topicName)
	if err != nil {
		return nil, err
	}
	out := make([]MessageID, 0, len(parts))
	for i, p := range parts {
		err := a.c.ownerNodeLong(ctx, p, true, func(ctx context.Context, b servingpb.BrokerClient) error {
			r, err := b.TerminateTopic(ctx, &servingpb.TerminateTopicRequest{Topic: p})
			if err != nil {
				return err
			}
			out = append(out, idFromProto(r.GetLast(), int32(i)))
			return nil
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
