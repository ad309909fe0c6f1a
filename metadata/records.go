package metadata

import (
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// NodeInfo is a live serving node, registered under its session lease.
type NodeInfo struct {
	ID       string `json:"id"`
	GRPCAddr string `json:"grpc_addr"`
	HTTPAddr string `json:"http_addr"`
	// StartedAt is unix nanoseconds.
	StartedAt int64 `json:"started_at"`
}

// BookieInfo is a live bookie, registered under its session lease. Its ID is
// its advertised gRPC address.
type BookieInfo struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	// ReadOnly: the bookie refuses new adds (its disk is nearly full), so
	// new ensembles leave it out (WritableBookies). It registers again
	// when that changes.
	ReadOnly bool `json:"read_only,omitempty"`
}

// Topic is a topic's existence record. A partitioned topic has one record
// with Partitions > 0, and each partition (name-partition-i) is a topic of
// its own with Partitions == 0 and PartitionOf set.
type Topic struct {
	Name        string `json:"name"`
	Partitions  int    `json:"partitions"`
	PartitionOf string `json:"partition_of,omitempty"`
	CreatedAt   int64  `json:"created_at"`
	Version     int64  `json:"-"`
}

// Ownership says which serving node owns a topic. The key is attached to the
// owner's session lease, so it vanishes when the owner dies.
type Ownership struct {
	Topic    string `json:"topic"`
	NodeID   string `json:"node_id"`
	GRPCAddr string `json:"grpc_addr"`
	Version  int64  `json:"-"`
}

// ManagedLedger is a topic's ordered list of ledgers.
type ManagedLedger struct {
	Topic   string       `json:"topic"`
	Ledgers []LedgerInfo `json:"ledgers"`
	// Producer deduplication state: highest persisted sequence id per
	// producer name, as of the last ledger roll or graceful unload (the
	// entries of a ledger still open carry the rest and are re-read on
	// takeover).
	Producers map[string]int64 `json:"producers,omitempty"`
	// Compaction is the topic's last compaction, if any.
	Compaction *Compaction `json:"compaction,omitempty"`
	// Terminated, once set, is the topic's last entry ({first ledger, -1}
	// when it has none): the topic takes no more messages (Pulsar's
	// terminate).
	Terminated *ids.Position `json:"terminated,omitempty"`
	Version    int64         `json:"-"`
}

// Compaction is a compacted copy of a topic up to Horizon: the latest
// message of each key, in a ledger of its own (one message per entry, each
// carrying the id it was published with), kept until the next compaction
// replaces it. The ledger is not in Ledgers: trims and offloads leave it
// alone, and it outlives the ledgers it summarises.
type Compaction struct {
	Ledger ids.LedgerID `json:"ledger"`
	// Horizon is the last entry compacted: the compacted ledger stands for
	// every entry up to it.
	Horizon ids.Position `json:"horizon"`
	// Messages is the compacted ledger's entry count.
	Messages int64 `json:"messages"`
	// HorizonBytes is the bytes of the horizon's ledger up to and
	// including the horizon, so that what was written to that ledger
	// after it counts toward the compaction threshold.
	HorizonBytes uint64 `json:"horizon_bytes,omitempty"`
	CompletedAt  int64  `json:"completed_at"`
}

// LedgerInfo is a ledger's summary inside its topic's managed ledger; the
// full record is the Ledger under its own key.
type LedgerInfo struct {
	ID      ids.LedgerID `json:"id"`
	Entries int64        `json:"entries"`
	Bytes   uint64       `json:"bytes"`
	// Publish-time range (unix nanoseconds) of a closed ledger.
	FirstPublishTime int64 `json:"first_publish_time,omitempty"`
	LastPublishTime  int64 `json:"last_publish_time,omitempty"`
	Closed           bool  `json:"closed,omitempty"`
	Offloaded        bool  `json:"offloaded,omitempty"`
	CreatedAt        int64 `json:"created_at"`
}

// Cursor is a durable subscription's position: everything at or before
// MarkDelete is acknowledged, and so is every message of the entries in
// AckedRanges and the messages BatchAcks names of entries acknowledged in
// part. Both are encodings owned by the serving tier (serving/doc.go),
// each bounded in size; what they leave out is delivered again.
type Cursor struct {
	Topic        string       `json:"topic"`
	Subscription string       `json:"subscription"`
	Type         string       `json:"type"`
	MarkDelete   ids.Position `json:"mark_delete"`
	AckedRanges  []byte       `json:"acked_ranges,omitempty"`
	// BatchAcks is the acknowledged messages of producer batches (entries)
	// acknowledged in part, as Pulsar's batch-index acknowledgements.
	BatchAcks []byte `json:"batch_acks,omitempty"`
	// Epoch changes with every move of the cursor that acks made before
	// it must not undo (a seek, an admin reset), stored with the move so
	// that the node that loads the topic next knows it. A record written
	// before epochs has none: 0.
	Epoch     uint64 `json:"epoch,omitempty"`
	UpdatedAt int64  `json:"updated_at"`
	Version   int64  `json:"-"`
}

// NamespacePolicy holds a namespace's settings. Zero values mean "the cluster
// default" except where noted.
type NamespacePolicy struct {
	Ensemble    int `json:"ensemble,omitempty"`
	WriteQuorum int `json:"write_quorum,omitempty"`
	AckQuorum   int `json:"ack_quorum,omitempty"`
	// RetentionMs keeps consumed data this long; 0 deletes it once consumed
	// by every subscription; -1 keeps it forever.
	RetentionMs int64 `json:"retention_ms"`
	// TTLMs acknowledges messages older than this on every subscription; 0: off.
	TTLMs           int64  `json:"ttl_ms"`
	MaxMessageBytes uint64 `json:"max_message_bytes,omitempty"`
	// OffloadThresholdBytes: offload closed ledgers once the topic's
	// bookie-resident bytes exceed it (-1: never on size, 0: at once).
	OffloadThresholdBytes int64 `json:"offload_threshold_bytes"`
	// OffloadAgeMs: offload a closed ledger once it is this old (-1: never on
	// age, 0: at once).
	OffloadAgeMs int64 `json:"offload_age_ms"`
	// OffloadDeletionLagMs: delete an offloaded ledger from the bookies this
	// long after its offload completed.
	OffloadDeletionLagMs int64 `json:"offload_deletion_lag_ms"`
	// BacklogQuotaBytes bounds the backlog of each subscription, in bytes
	// (0: no quota); BacklogQuotaPolicy says what happens past it.
	BacklogQuotaBytes  int64  `json:"backlog_quota_bytes,omitempty"`
	BacklogQuotaPolicy string `json:"backlog_quota_policy,omitempty"`
	// DispatchRateMsgs and DispatchRateBytes bound how fast each durable
	// subscription of each topic (each partition) is sent messages, per
	// second (0: no bound), as Pulsar's subscription dispatch rate.
	DispatchRateMsgs  int64 `json:"dispatch_rate_msgs,omitempty"`
	DispatchRateBytes int64 `json:"dispatch_rate_bytes,omitempty"`
	// PublishRateMsgs and PublishRateBytes bound how fast each topic (each
	// partition) takes messages from its producers, per second (0: no
	// bound), as Pulsar's publish rate and Kafka's producer quotas.
	PublishRateMsgs  int64 `json:"publish_rate_msgs,omitempty"`
	PublishRateBytes int64 `json:"publish_rate_bytes,omitempty"`
	// CompactionThresholdBytes compacts a topic (each partition) once the
	// bytes of its ledgers after the last compaction reach it (0: only
	// when asked), as Pulsar's compaction threshold.
	CompactionThresholdBytes int64 `json:"compaction_threshold_bytes,omitempty"`
	// SchemaCompatibility is how a topic's new schema version must relate
	// to those before (one of SchemaStrategies; "" is FULL, Pulsar's
	// default); SchemaValidationEnforced refuses producers without a
	// schema on topics that have one; SchemaAutoUpdateDisabled lets only
	// admins add versions (a producer's new schema is refused).
	SchemaCompatibility      string `json:"schema_compatibility,omitempty"`
	SchemaValidationEnforced bool   `json:"schema_validation_enforced,omitempty"`
	SchemaAutoUpdateDisabled bool   `json:"schema_auto_update_disabled,omitempty"`
	Version                  int64  `json:"-"`
}

// SchemaStrategies are the schema compatibility strategies, as Pulsar's.
var SchemaStrategies = []string{"ALWAYS_COMPATIBLE", "ALWAYS_INCOMPATIBLE", "BACKWARD", "FORWARD", "FULL",
	"BACKWARD_TRANSITIVE", "FORWARD_TRANSITIVE", "FULL_TRANSITIVE"}

// Backlog quota policies (NamespacePolicy.BacklogQuotaPolicy; "" is the
// first).
const (
	// QuotaProducerException fails sends while a subscription is over
	// the quota.
	QuotaProducerException = "producer_exception"
	// QuotaConsumerBacklogEviction skips the oldest messages of the
	// subscriptions over the quota.
	QuotaConsumerBacklogEviction = "consumer_backlog_eviction"
)

// DefaultNamespacePolicy is what a namespace without a stored policy gets:
// data kept until consumed, no TTL, offload never, 5 MiB messages.
func DefaultNamespacePolicy() NamespacePolicy {
	return NamespacePolicy{
		RetentionMs:           0,
		MaxMessageBytes:       5 << 20,
		OffloadThresholdBytes: -1,
		OffloadAgeMs:          -1,
		OffloadDeletionLagMs:  60_000,
	}
}

// Errors of topic and ownership operations.
var (
	ErrTopicExists   = errcode.New(errcode.TopicExists, "metadata: topic exists")
	ErrTopicNotFound = errcode.New(errcode.TopicNotFound, "metadata: topic not found")
	// ErrNamespaceNotFound: the namespace has neither a policy nor a topic.
	ErrNamespaceNotFound = errcode.New(errcode.NamespaceNotFound, "metadata: namespace not found")
	// ErrNamespaceNotEmpty: the namespace still has topics.
	ErrNamespaceNotEmpty = errcode.New(errcode.NamespaceNotEmpty, "metadata: namespace has topics")
)
