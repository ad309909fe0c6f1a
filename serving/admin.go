package serving

import (
	"context"
	"errors"
	"slices"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	topicname "github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// maxPartitions bounds a partitioned topic.
const maxPartitions = metadata.MaxPartitions

// CreateTopic creates a topic, or a partitioned topic and its partitions.
func (n *Node) CreateTopic(ctx context.Context, req *servingpb.CreateTopicRequest) (*servingpb.CreateTopicResponse, error) {
	name, err := canonical(req.GetTopic())
	if err != nil {
		return nil, err
	}
	parts := int(req.GetPartitions())
	if parts > maxPartitions {
		return nil, errcode.New(errcode.InvalidArgument, "at most %d partitions", maxPartitions)
	}
	// The store writes the partitions' records in the same transaction.
	if err := n.meta.CreateTopic(ctx, &metadata.Topic{Name: name.String(), Partitions: parts, CreatedAt: nowNanos()}); err != nil {
		return nil, err
	}
	return &servingpb.CreateTopicResponse{}, nil
}

// topicRecord validates topic and reads its record.
func (n *Node) topicRecord(ctx context.Context, topic string) (topicname.Name, *metadata.Topic, error) {
	name, err := canonical(topic)
	if err != nil {
		return topicname.Name{}, nil, err
	}
	rec, err := n.meta.GetTopic(ctx, name.String())
	if err != nil {
		return topicname.Name{}, nil, notFoundAsTopic(err, name.String())
	}
	return name, rec, nil
}

// AddPartitions raises a partitioned topic's partition count, as Pulsar's
// update-partitioned-topic. Every subscription of an existing partition
// gets a cursor at the start of each new partition in the same step, so it
// misses nothing produced there before its consumers discover the
// partitions (the SDK looks every PartitionsRefresh). A subscription created
// while this runs may get no cursor there; the SDK subscribes to new
// partitions from their start anyway. Any node answers: only metadata
// changes.
func (n *Node) AddPartitions(ctx context.Context, req *servingpb.AddPartitionsRequest) (*servingpb.AddPartitionsResponse, error) {
	name, rec, err := n.topicRecord(ctx, req.GetTopic())
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var subs []metadata.Cursor
	for i := range rec.Partitions {
		cs, err := n.meta.ListCursors(ctx, name.Partition(i).String())
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if !seen[c.Subscription] {
				seen[c.Subscription] = true
				subs = append(subs, metadata.Cursor{Subscription: c.Subscription, Type: c.Type})
			}
		}
	}
	// A lost compare-and-swap (a concurrent change) is BadVersion: try again.
	if err := n.meta.AddPartitions(ctx, name.String(), int(req.GetPartitions()), subs); err != nil {
		return nil, notFoundAsTopic(err, name.String())
	}
	return &servingpb.AddPartitionsResponse{}, nil
}

// DeleteTopic deletes a topic (and its partitions): its ledgers, cursors,
// managed ledger and record. Without force it refuses while a subscription
// has a backlog. The owner does it; other nodes redirect.
func (n *Node) DeleteTopic(ctx context.Context, req *servingpb.DeleteTopicRequest) (*servingpb.DeleteTopicResponse, error) {
	name, rec, err := n.topicRecord(ctx, req.GetTopic())
	if err != nil {
		return nil, err
	}
	if rec.PartitionOf != "" {
		return nil, errcode.New(errcode.InvalidArgument, "%s is a partition of %s: delete %s (all its partitions go together)", name, rec.PartitionOf, rec.PartitionOf)
	}
	if !req.GetForce() {
		// Every partition's backlog first: a refusal must leave the
		// topic whole, not with the partitions before the refused one
		// gone. (A partition another node owns is checked when the
		// delete reaches that node, as deleteOne checks each anyway.)
		for i := 0; i < rec.Partitions; i++ {
			if err := n.refuseBacklog(ctx, name.Partition(i).String()); err != nil {
				return nil, err
			}
		}
	}
	for i := 0; i < rec.Partitions; i++ {
		if err := n.deleteOne(ctx, name.Partition(i).String(), req.GetForce()); err != nil {
			return nil, err
		}
	}
	defer n.forgetAccess(topicGrantsKey(name.String())) // its grants went with it
	defer n.schemas.forget(schemasKey(name.String()))   // and its schema versions
	if rec.Partitions == 0 {
		if err := n.deleteOne(ctx, name.String(), req.GetForce()); err != nil {
			return nil, err
		}
		return &servingpb.DeleteTopicResponse{}, nil
	}
	if err := n.meta.DeleteTopic(ctx, name.String()); err != nil {
		return nil, notFoundAsTopic(err, name.String())
	}
	return &servingpb.DeleteTopicResponse{}, nil
}

// refuseBacklog is INVALID_ARGUMENT if a durable subscription of the
// topic this node owns (or takes) has a backlog; nil for a topic that is
// gone or owned elsewhere.
func (n *Node) refuseBacklog(ctx context.Context, name string) error {
	t, err := n.topicFor(ctx, name, false)
	switch errcode.CodeOf(err) {
	case errcode.OK:
	case errcode.TopicNotFound, errcode.NotOwner:
		return nil
	default:
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return backlogRefusalLocked(t, name)
}

// backlogRefusalLocked is refuseBacklog's check. t.mu is held.
func backlogRefusalLocked(t *topic, name string) error {
	for _, s := range t.mu.subs {
		if s.durable && t.backlogLocked(s.acks) > 0 {
			return errcode.New(errcode.InvalidArgument, "subscription %s of %s has a backlog; use force", s.name, name)
		}
	}
	return nil
}

func (n *Node) deleteOne(ctx context.Context, name string, force bool) error {
	t, err := n.topicFor(ctx, name, false)
	if errcode.CodeOf(err) == errcode.TopicNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	t.mu.Lock()
	if !force {
		if err := backlogRefusalLocked(t, name); err != nil {
			t.mu.Unlock()
			return err
		}
	}
	var subs []string
	for s := range t.mu.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	t.drop(reasonDelete, errcode.New(errcode.TopicNotFound, "topic %s was deleted", name), false)
	for _, s := range subs {
		_ = n.meta.DeleteCursor(ctx, name, s)
	}
	t.tier.mu.Lock() // waits for an offload pass, which the drop cancelled
	defer t.tier.mu.Unlock()
	// The ledgers are listed only once the roll or compaction under way
	// has recorded its ledger (none starts on a dropped topic): listed
	// before the drop, a ledger recorded meanwhile was deleted by nothing.
	t.mlMu.Lock()
	defer t.mlMu.Unlock()
	t.mu.Lock()
	ml := cloneML(t.mu.ml)
	t.mu.Unlock()
	if ml.Compaction != nil {
		t.deleteLedger(ctx, ml.Compaction.Ledger)
	}
	for _, li := range ml.Ledgers {
		t.deleteLedger(ctx, li.ID)
	}
	if err := n.meta.DeleteTopic(ctx, name); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

func isNotFound(err error) bool {
	return errors.Is(err, metadata.ErrNotFound) || errcode.CodeOf(err) == errcode.TopicNotFound
}

func notFoundAsTopic(err error, name string) error {
	if isNotFound(err) {
		return errcode.New(errcode.TopicNotFound, "topic %s does not exist", name)
	}
	return err
}

// ListTopics lists topics (partitions are folded into their parent).
func (n *Node) ListTopics(ctx context.Context, req *servingpb.ListTopicsRequest) (*servingpb.ListTopicsResponse, error) {
	ns := req.GetNamespace()
	if ns != "" {
		if _, _, err := topicname.ParseNamespace(ns); err != nil {
			return nil, err
		}
	}
	ts, err := n.meta.ListTopics(ctx, ns)
	if err != nil {
		return nil, err
	}
	out := &servingpb.ListTopicsResponse{}
	for _, t := range ts {
		if t.PartitionOf != "" {
			continue
		}
		out.Topics = append(out.Topics, &servingpb.TopicInfo{Topic: t.Name, Partitions: uint32(t.Partitions)})
	}
	return out, nil
}

// DeleteNamespace deletes a namespace without topics.
func (n *Node) DeleteNamespace(ctx context.Context, req *servingpb.DeleteNamespaceRequest) (*servingpb.DeleteNamespaceResponse, error) {
	if _, _, err := topicname.ParseNamespace(req.GetNamespace()); err != nil {
		return nil, err
	}
	if err := n.meta.DeleteNamespace(ctx, req.GetNamespace()); err != nil {
		return nil, unavailable("deleting namespace", err)
	}
	n.forgetAccess(nsGrantsKey(req.GetNamespace())) // its grants went with it
	n.schemas.forgetAll()                           // and its topics' schema versions
	return &servingpb.DeleteNamespaceResponse{}, nil
}

// ListNamespaces answers the namespaces with a policy or a topic.
func (n *Node) ListNamespaces(ctx context.Context, req *servingpb.ListNamespacesRequest) (*servingpb.ListNamespacesResponse, error) {
	if t := req.GetTenant(); t != "" {
		if err := topicname.CheckTenant(t); err != nil {
			return nil, err
		}
	}
	ns, err := n.meta.ListNamespaces(ctx, req.GetTenant())
	if err != nil {
		return nil, unavailable("listing namespaces", err)
	}
	return &servingpb.ListNamespacesResponse{Namespaces: ns}, nil
}

// GetTopic answers a topic's record.
func (n *Node) GetTopic(ctx context.Context, req *servingpb.GetTopicRequest) (*servingpb.GetTopicResponse, error) {
	name, err := canonical(req.GetTopic())
	if err != nil {
		return nil, err
	}
	t, err := n.meta.GetTopic(ctx, name.String())
	if isNotFound(err) && req.GetAutoCreate() {
		t, err = n.autoCreatePartitioned(ctx, name)
	}
	if err != nil {
		return nil, notFoundAsTopic(err, name.String())
	}
	return &servingpb.GetTopicResponse{Topic: &servingpb.TopicInfo{Topic: t.Name, Partitions: uint32(t.Partitions)}}, nil
}

// autoCreatePartitioned creates name with Config.DefaultNumPartitions
// partitions, for a producer or consumer about to open it, when the node
// creates topics on first use with partitions; otherwise it answers
// TopicNotFound (the open creates a topic that is not partitioned, or
// refuses). A partition's name is never made a partitioned topic.
func (n *Node) autoCreatePartitioned(ctx context.Context, name topicname.Name) (*metadata.Topic, error) {
	full := name.String()
	if i, _ := name.PartitionIndex(); n.cfg.NoTopicAutoCreation || n.cfg.DefaultNumPartitions <= 0 || i >= 0 {
		return nil, errcode.New(errcode.TopicNotFound, "topic %s does not exist", full)
	}
	err := n.meta.CreateTopic(ctx, &metadata.Topic{Name: full, Partitions: n.cfg.DefaultNumPartitions, CreatedAt: nowNanos()})
	if err != nil && errcode.CodeOf(err) != errcode.TopicExists {
		return nil, unavailable("creating topic", err)
	}
	if err == nil {
		n.log.Info("partitioned topic created on first use", "topic", full, "partitions", n.cfg.DefaultNumPartitions)
	}
	return n.meta.GetTopic(ctx, full) // a concurrent creation's, when it won
}

// TopicStats is answered by the owner.
func (n *Node) TopicStats(ctx context.Context, req *servingpb.TopicStatsRequest) (*servingpb.TopicStatsResponse, error) {
	t, err := n.topicFor(ctx, req.GetTopic(), false)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := &servingpb.TopicStatsResponse{Topic: t.name, Owner: n.cfg.GRPCAddr, MessagesIn: t.mu.msgsIn,
		BytesIn: t.mu.bytesIn, Producers: uint32(len(t.mu.prods))}
	if c := t.mu.ml.Compaction; c != nil {
		out.CompactionHorizon = &servingpb.MessageId{Ledger: uint64(c.Horizon.Ledger), Entry: int64(c.Horizon.Entry)}
		out.CompactedMessages = uint64(c.Messages)
	}
	if p := t.mu.ml.Terminated; p != nil {
		out.Terminated = &servingpb.MessageId{Ledger: uint64(p.Ledger), Entry: int64(p.Entry)}
	}
	for i, li := range t.mu.ml.Ledgers {
		ls := &servingpb.LedgerStats{Ledger: uint64(li.ID), Entries: t.entriesLocked(i), Bytes: t.bytesLocked(i), Offloaded: li.Offloaded, State: "closed"}
		if !li.Closed {
			ls.State = "open"
		}
		out.StorageBytes += ls.Bytes
		if li.Offloaded {
			out.OffloadedBytes += ls.Bytes
		}
		out.Ledgers = append(out.Ledgers, ls)
	}
	for _, s := range t.mu.subs {
		var unacked uint64
		for _, pe := range s.pending {
			switch {
			case pe.keyed != nil:
				for i, o := range pe.keyed.owners {
					if o != nil && !pe.acked[i] {
						unacked++
					}
				}
			case pe.owner != nil:
				unacked += uint64(len(pe.acked) - pe.nAcked)
			}
		}
		md := s.acks.markDelete
		var active string
		if s.active != nil {
			active = s.active.name
		}
		out.Subscriptions = append(out.Subscriptions, &servingpb.SubscriptionStats{Name: s.name, Type: s.typ,
			Backlog: t.backlogLocked(s.acks), BacklogBytes: t.backlogBytesLocked(s.acks), Consumers: uint32(len(s.consumers)), Unacked: unacked,
			MarkDelete: &servingpb.MessageId{Ledger: uint64(md.Ledger), Entry: int64(md.Entry)}, ActiveConsumer: active, Delayed: uint64(len(s.delayed)),
			OldestUnackedPublishTimeUnixNano: s.oldest.publishTime})
	}
	return out, nil
}

// SetNamespacePolicy validates and stores a namespace's policy.
func (n *Node) SetNamespacePolicy(ctx context.Context, req *servingpb.SetNamespacePolicyRequest) (*servingpb.SetNamespacePolicyResponse, error) {
	if _, _, err := topicname.ParseNamespace(req.GetNamespace()); err != nil {
		return nil, err
	}
	p := req.GetPolicy()
	if p == nil {
		return nil, errcode.New(errcode.InvalidPolicy, "policy missing")
	}
	pol := metadata.NamespacePolicy{Ensemble: int(p.GetEnsemble()), WriteQuorum: int(p.GetWriteQuorum()), AckQuorum: int(p.GetAckQuorum()),
		RetentionMs: p.GetRetentionMs(), TTLMs: p.GetTtlMs(), MaxMessageBytes: p.GetMaxMessageBytes(),
		OffloadThresholdBytes: p.GetOffloadThresholdBytes(), OffloadAgeMs: p.GetOffloadAgeMs(), OffloadDeletionLagMs: p.GetOffloadDeletionLagMs(),
		BacklogQuotaBytes: p.GetBacklogQuotaBytes(), DispatchRateMsgs: p.GetDispatchRateMsgs(), DispatchRateBytes: p.GetDispatchRateBytes(),
		PublishRateMsgs: p.GetPublishRateMsgs(), PublishRateBytes: p.GetPublishRateBytes(),
		CompactionThresholdBytes: p.GetCompactionThresholdBytes(), SchemaCompatibility: p.GetSchemaCompatibility(),
		SchemaValidationEnforced: p.GetSchemaValidationEnforced(), SchemaAutoUpdateDisabled: p.GetSchemaAutoUpdateDisabled()}
	switch p.GetBacklogQuotaPolicy() {
	case servingpb.BacklogQuotaPolicy_PRODUCER_EXCEPTION:
		pol.BacklogQuotaPolicy = metadata.QuotaProducerException
	case servingpb.BacklogQuotaPolicy_CONSUMER_BACKLOG_EVICTION:
		pol.BacklogQuotaPolicy = metadata.QuotaConsumerBacklogEviction
	default:
		return nil, errcode.New(errcode.InvalidPolicy, "unknown backlog quota policy %d", p.GetBacklogQuotaPolicy())
	}
	if err := checkPolicy(pol); err != nil {
		return nil, err
	}
	if err := n.meta.SetNamespacePolicy(ctx, req.GetNamespace(), pol); err != nil {
		return nil, err
	}
	return &servingpb.SetNamespacePolicyResponse{}, nil
}

// maxMessageLimit is the largest message size a policy may allow.
const maxMessageLimit = 64 << 20

func checkPolicy(p metadata.NamespacePolicy) error {
	e, w, a := p.Ensemble, p.WriteQuorum, p.AckQuorum
	switch {
	case e < 0 || w < 0 || a < 0 || e > 32:
		return errcode.New(errcode.InvalidPolicy, "quorums must be within 0..32")
	case e > 0 && w > e, w > 0 && a > w:
		return errcode.New(errcode.InvalidPolicy, "want ensemble >= write quorum >= ack quorum")
	case p.RetentionMs < -1 || p.TTLMs < 0 || p.OffloadThresholdBytes < -1 || p.OffloadAgeMs < -1 || p.OffloadDeletionLagMs < 0:
		return errcode.New(errcode.InvalidPolicy, "negative durations other than -1 are not allowed")
	case p.MaxMessageBytes > maxMessageLimit:
		return errcode.New(errcode.InvalidPolicy, "max message bytes above %d", maxMessageLimit)
	case p.BacklogQuotaBytes < 0:
		return errcode.New(errcode.InvalidPolicy, "backlog quota must be 0 (none) or positive")
	case p.DispatchRateMsgs < 0 || p.DispatchRateBytes < 0:
		return errcode.New(errcode.InvalidPolicy, "dispatch rates must be 0 (none) or positive")
	case p.PublishRateMsgs < 0 || p.PublishRateBytes < 0:
		return errcode.New(errcode.InvalidPolicy, "publish rates must be 0 (none) or positive")
	case p.CompactionThresholdBytes < 0:
		return errcode.New(errcode.InvalidPolicy, "compaction threshold must be 0 (none) or positive")
	case p.SchemaCompatibility != "" && !slices.Contains(metadata.SchemaStrategies, p.SchemaCompatibility):
		return errcode.New(errcode.InvalidPolicy, "schema compatibility %q: want one of %v", p.SchemaCompatibility, metadata.SchemaStrategies)
	}
	return nil
}

// GetNamespacePolicy answers the stored policy, or the default.
func (n *Node) GetNamespacePolicy(ctx context.Context, req *servingpb.GetNamespacePolicyRequest) (*servingpb.GetNamespacePolicyResponse, error) {
	if _, _, err := topicname.ParseNamespace(req.GetNamespace()); err != nil {
		return nil, err
	}
	p, err := n.policyOf(ctx, req.GetNamespace())
	if err != nil {
		return nil, err
	}
	return &servingpb.GetNamespacePolicyResponse{Policy: nsPolicyPB(p)}, nil
}

func nsPolicyPB(p metadata.NamespacePolicy) *servingpb.NamespacePolicy {
	return &servingpb.NamespacePolicy{
		Ensemble: uint32(p.Ensemble), WriteQuorum: uint32(p.WriteQuorum), AckQuorum: uint32(p.AckQuorum),
		RetentionMs: p.RetentionMs, TtlMs: p.TTLMs, MaxMessageBytes: p.MaxMessageBytes,
		OffloadThresholdBytes: p.OffloadThresholdBytes, OffloadAgeMs: p.OffloadAgeMs, OffloadDeletionLagMs: p.OffloadDeletionLagMs,
		BacklogQuotaBytes: p.BacklogQuotaBytes, BacklogQuotaPolicy: quotaPolicyPB(p.BacklogQuotaPolicy),
		DispatchRateMsgs: p.DispatchRateMsgs, DispatchRateBytes: p.DispatchRateBytes, CompactionThresholdBytes: p.CompactionThresholdBytes,
		PublishRateMsgs: p.PublishRateMsgs, PublishRateBytes: p.PublishRateBytes,
		SchemaCompatibility: p.SchemaCompatibility, SchemaValidationEnforced: p.SchemaValidationEnforced, SchemaAutoUpdateDisabled: p.SchemaAutoUpdateDisabled}
}

func quotaPolicyPB(s string) servingpb.BacklogQuotaPolicy {
	if s == metadata.QuotaConsumerBacklogEviction {
		return servingpb.BacklogQuotaPolicy_CONSUMER_BACKLOG_EVICTION
	}
	return servingpb.BacklogQuotaPolicy_PRODUCER_EXCEPTION
}

// ResetCursor moves a durable subscription to a message id (by the owner).
func (n *Node) ResetCursor(ctx context.Context, req *servingpb.ResetCursorRequest) (*servingpb.ResetCursorResponse, error) {
	t, err := n.topicFor(ctx, req.GetTopic(), false)
	if err != nil {
		return nil, err
	}
	var (
		md    ids.Position
		epoch uint64
	)
	switch to := req.GetTo().(type) {
	case *servingpb.ResetCursorRequest_MessageId:
		// Resolved under the lock, against the ledgers then.
		if err := t.checkIDTopic(ctx, fromPB(to.MessageId)); err != nil {
			return nil, err
		}
	case *servingpb.ResetCursorRequest_TimeUnixNano:
		if md, err = t.positionAt(ctx, to.TimeUnixNano); err != nil {
			return nil, err
		}
	case *servingpb.ResetCursorRequest_Edge:
		if to.Edge != servingpb.InitialPosition_EARLIEST && to.Edge != servingpb.InitialPosition_LATEST {
			return nil, errcode.New(errcode.InvalidArgument, "unknown reset position %d", to.Edge)
		}
	default:
		return nil, errcode.New(errcode.InvalidArgument, "reset needs a message id, a time, earliest or latest")
	}
	if req.GetExecute() {
		// Held until the reset is applied: no flush stores the cursor
		// as it was once the reset is stored.
		t.cursorMu.Lock()
		defer t.cursorMu.Unlock()
	}
	t.mu.Lock()
	if to, ok := req.GetTo().(*servingpb.ResetCursorRequest_MessageId); ok {
		if md, err = t.idTargetLocked(fromPB(to.MessageId)); err != nil {
			t.mu.Unlock()
			return nil, err
		}
	}
	if to, ok := req.GetTo().(*servingpb.ResetCursorRequest_Edge); ok {
		// Resolved under the lock, so that "latest" is the last entry
		// written when the reset is decided: no later message is skipped.
		md = t.mu.lastPos
		if to.Edge == servingpb.InitialPosition_EARLIEST {
			md = t.firstPositionLocked()
		}
	}
	s := t.mu.subs[req.GetSubscription()]
	serveErr := t.servingErrLocked()
	t.mu.Unlock()
	if s == nil {
		return nil, errcode.New(errcode.SubscriptionNotFound, "subscription %q of %s does not exist", req.GetSubscription(), t.name)
	}
	if req.GetExecute() {
		if serveErr != nil {
			return nil, serveErr
		}
		// Stored before it is applied and answered, as Pulsar's reset: a
		// reset answered and then lost with its owner would not happen
		// at all. A failed write changes nothing.
		if epoch, err = t.storeMovedCursor(ctx, s, md); err != nil {
			return nil, err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if req.GetExecute() {
		// Stored, so done: applied even if the topic stopped being served
		// meanwhile, so that an unload's flush (after cursorMu) stores
		// the moved cursor again rather than the one from before it.
		s.resetLocked(md, epoch)
		s.disconnectLocked(nil, "was reset")
	}
	next, ok := t.orderLocked().next(md)
	return &servingpb.ResetCursorResponse{Position: &servingpb.MessageId{Ledger: uint64(next.Ledger), Entry: int64(next.Entry)}, EndOfTopic: !ok}, nil
}

// CreateSubscription creates a durable subscription without a consumer, at
// the oldest retained message or after the last one, as Pulsar's
// create-subscription does: from then on the topic keeps, for it, every
// message it has not acknowledged. The topic is created if it does not
// exist, as a consumer's subscribe would.
func (n *Node) CreateSubscription(ctx context.Context, req *servingpb.CreateSubscriptionRequest) (*servingpb.CreateSubscriptionResponse, error) {
	name := req.GetSubscription()
	if err := topicname.CheckSubscription(name); err != nil {
		return nil, err
	}
	at := req.GetInitialPosition()
	if at != servingpb.InitialPosition_EARLIEST && at != servingpb.InitialPosition_LATEST {
		return nil, errcode.New(errcode.InvalidArgument, "unknown initial position %d", at)
	}
	t, err := n.topicFor(ctx, req.GetTopic(), true)
	if err != nil {
		return nil, err
	}
	// The type is the first consumer's to choose (attach converts it);
	// until then nothing is dispatched.
	created, err := t.ensureDurable(ctx, name, servingpb.SubscriptionType_EXCLUSIVE, at)
	if err != nil {
		return nil, err
	}
	if !created {
		return nil, errcode.New(errcode.SubscriptionExists, "subscription %q of %s exists", name, t.name)
	}
	return &servingpb.CreateSubscriptionResponse{}, nil
}

// DeleteSubscription removes a subscription without consumers.
func (n *Node) DeleteSubscription(ctx context.Context, req *servingpb.DeleteSubscriptionRequest) (*servingpb.DeleteSubscriptionResponse, error) {
	t, err := n.topicFor(ctx, req.GetTopic(), false)
	if err != nil {
		return nil, err
	}
	if err := n.removeSubscription(ctx, t, req.GetSubscription(), nil); err != nil {
		return nil, err
	}
	return &servingpb.DeleteSubscriptionResponse{}, nil
}

// removeSubscription deletes subscription name of t and its cursor, if it
// has no consumer but except (the one unsubscribing, when not nil).
func (n *Node) removeSubscription(ctx context.Context, t *topic, name string, except *consumer) error {
	// A flush under way must not store the cursor again after it is
	// deleted (nor find it gone, a lost compare-and-swap that would drop
	// the topic).
	t.cursorMu.Lock()
	defer t.cursorMu.Unlock()
	t.mu.Lock()
	s := t.mu.subs[name]
	if s == nil {
		t.mu.Unlock()
		return errcode.New(errcode.SubscriptionNotFound, "subscription %q of %s does not exist", name, t.name)
	}
	others := 0
	for _, c := range s.consumers {
		if c != except {
			others++
		}
	}
	if s.deleting {
		t.mu.Unlock()
		return errcode.New(errcode.Unavailable, "subscription %s of %s is being deleted", s.name, t.name)
	}
	if others > 0 {
		t.mu.Unlock()
		what := "consumers are"
		if others == 1 {
			what = "consumer is"
		}
		if except == nil {
			return errcode.New(errcode.ConsumerBusy, "subscription %s of %s: %d %s attached", s.name, t.name, others, what)
		}
		return errcode.New(errcode.ConsumerBusy, "subscription %s of %s: %d other %s attached", s.name, t.name, others, what)
	}
	// The stored cursor goes first, the subscription after it: removed
	// from the node while its cursor stayed in etcd (a failed delete), its
	// backlog no longer held back trims, and the cursor came back after a
	// move, past what the trims had deleted meanwhile.
	s.deleting = true
	t.mu.Unlock()
	if s.durable {
		if err := n.meta.DeleteCursor(ctx, t.name, s.name); err != nil && !errors.Is(err, metadata.ErrNotFound) {
			t.mu.Lock()
			s.deleting = false
			t.mu.Unlock()
			return unavailable("deleting cursor", err)
		}
	}
	t.mu.Lock()
	if t.mu.subs[s.name] == s {
		delete(t.mu.subs, s.name)
	}
	s.stopLocked()
	t.mu.Unlock()
	n.m.forgetSubscription(t.name, s.name)
	return nil
}
