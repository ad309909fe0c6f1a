package loadtest

import (
	"fmt"
	"time"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
)

// SubscriptionType is how a subscription's consumers share its messages.
type SubscriptionType string

// Subscription types, with Pulsar's meaning.
const (
	Exclusive SubscriptionType = "exclusive"
	Failover  SubscriptionType = "failover"
	Shared    SubscriptionType = "shared"
	KeyShared SubscriptionType = "key_shared"
)

// KeyDistribution is how producers choose message keys.
type KeyDistribution string

// Key distributions, after the OpenMessaging Benchmark's KeyDistributorType.
const (
	// NoKey sends messages without a key; partitions are chosen round robin.
	NoKey KeyDistribution = "none"
	// KeyRoundRobin cycles through Workload.Keys keys.
	KeyRoundRobin KeyDistribution = "round-robin"
	// KeyRandom picks one of Workload.Keys keys at random (seeded).
	KeyRandom KeyDistribution = "random"
)

// Limits on a workload, so that a typo cannot exhaust the machine.
const (
	MaxTopics            = 1024
	MaxPartitions        = 256
	MaxProducersPerTopic = 64
	MaxConsumersPerSub   = 64
	MaxSubsPerTopic      = 16
	MaxMessageSize       = 4 << 20
	MaxKeys              = 1 << 20
)

// PayloadKind is what fills a payload after its header.
type PayloadKind string

// Payload kinds.
const (
	// PayloadRandom is random bytes: incompressible (the default).
	PayloadRandom PayloadKind = "random"
	// PayloadText is log-like text of a small vocabulary: compressible
	// about as events and logs are (Workload.Compression).
	PayloadText PayloadKind = "text"
)

// Workload describes one run. The zero value is not valid; start from
// DefaultWorkload.
type Workload struct {
	// Topics is the number of topics (default 1).
	Topics int
	// Partitions per topic (default 1). A partitioned topic is Partitions
	// topics named "<name>-partition-<i>".
	Partitions int
	// ProducersPerTopic (default 1). Each producer writes to every
	// partition of its topic.
	ProducersPerTopic int
	// SubscriptionsPerTopic (default 1).
	SubscriptionsPerTopic int
	// ConsumersPerSubscription (default 1). Exclusive subscriptions take one.
	ConsumersPerSubscription int
	// SubscriptionType (default exclusive).
	SubscriptionType SubscriptionType
	// MessageSize in bytes, at least HeaderSize (default 1024).
	MessageSize int
	// KeyDistribution (default none) and the number of distinct keys
	// (default 1024).
	KeyDistribution KeyDistribution
	Keys            int
	// Rate is the target publish rate in messages per second over all
	// producers; 0 means as fast as the window allows ("max"). Default 1000.
	Rate float64
	// BatchingDelay is the producer batching delay handed to drivers that
	// batch (default 1ms).
	BatchingDelay time.Duration
	// MaxPending bounds the messages each producer has in flight (default 5000,
	// the SDK's default: five full batches).
	MaxPending int
	// Duration of the measured phase (default 10s) after Warmup (default 0).
	// Messages sent during the warm-up are verified but not measured.
	Duration time.Duration
	Warmup   time.Duration
	// MaxMessagesPerProducer stops each producer after this many sends
	// (0 = no limit but Duration).
	MaxMessagesPerProducer int64
	// DrainTimeout is how long consumers may go without progress after the
	// producers stop before the missing messages are declared lost
	// (default 10s).
	DrainTimeout time.Duration
	// TopicPrefix names the topics: "<prefix>-<i>" (default
	// "public/default/loadtest").
	TopicPrefix string
	// Seed makes key choice reproducible (default 1).
	Seed int64
	// Payload is what fills each payload after its header (default
	// random); each message takes its own window of a larger filler, so
	// that the messages of a batch differ.
	Payload PayloadKind
	// Compression is the producers' codec for drivers that compress
	// batches (strata): none (default), lz4, zlib, zstd or snappy.
	Compression string
	// BacklogBytes, above 0, makes the run a backlog run (backlog.go):
	// consumers wait until the producers have built a backlog of this
	// many bytes, then drain it while the producers keep to Rate, and
	// the load ends once they have caught up or Duration has passed.
	// Default 0: consumers receive from the start.
	BacklogBytes int64
}

// DefaultWorkload returns the workload every field's documented default.
func DefaultWorkload() Workload {
	return Workload{
		Topics:                   1,
		Partitions:               1,
		ProducersPerTopic:        1,
		SubscriptionsPerTopic:    1,
		ConsumersPerSubscription: 1,
		SubscriptionType:         Exclusive,
		MessageSize:              1024,
		KeyDistribution:          NoKey,
		Keys:                     1024,
		Rate:                     1000,
		BatchingDelay:            time.Millisecond,
		MaxPending:               5000,
		Duration:                 10 * time.Second,
		DrainTimeout:             10 * time.Second,
		TopicPrefix:              "public/default/loadtest",
		Seed:                     1,
		Payload:                  PayloadRandom,
		Compression:              "none",
	}
}

// Validate reports the first invalid field as an InvalidArgument error.
func (w Workload) Validate() error {
	checks := []struct {
		bad bool
		msg string
	}{
		{w.Topics < 1 || w.Topics > MaxTopics, fmt.Sprintf("topics must be in [1, %d]", MaxTopics)},
		{w.Partitions < 1 || w.Partitions > MaxPartitions, fmt.Sprintf("partitions must be in [1, %d]", MaxPartitions)},
		{w.ProducersPerTopic < 0 || w.ProducersPerTopic > MaxProducersPerTopic, fmt.Sprintf("producers per topic must be in [0, %d]", MaxProducersPerTopic)},
		{w.SubscriptionsPerTopic < 0 || w.SubscriptionsPerTopic > MaxSubsPerTopic, fmt.Sprintf("subscriptions per topic must be in [0, %d]", MaxSubsPerTopic)},
		{w.ConsumersPerSubscription < 1 || w.ConsumersPerSubscription > MaxConsumersPerSub, fmt.Sprintf("consumers per subscription must be in [1, %d]", MaxConsumersPerSub)},
		{!validSubType(w.SubscriptionType), "subscription type must be exclusive, failover, shared or key_shared"},
		{w.SubscriptionType == Exclusive && w.ConsumersPerSubscription > 1, "an exclusive subscription takes one consumer"},
		{w.MessageSize < HeaderSize || w.MessageSize > MaxMessageSize, fmt.Sprintf("message size must be in [%d, %d]", HeaderSize, MaxMessageSize)},
		{!validKeyDist(w.KeyDistribution), "key distribution must be none, round-robin or random"},
		{w.Keys < 1 || w.Keys > MaxKeys, fmt.Sprintf("keys must be in [1, %d]", MaxKeys)},
		{w.Rate < 0, "rate must be >= 0 (0 = max)"},
		{w.BatchingDelay < 0, "batching delay must be >= 0"},
		{w.MaxPending < 1 || w.MaxPending > 1<<20, "max pending must be in [1, 1048576]"},
		{w.Duration <= 0, "duration must be > 0"},
		{w.Warmup < 0, "warm-up must be >= 0"},
		{w.MaxMessagesPerProducer < 0, "max messages per producer must be >= 0"},
		{w.DrainTimeout <= 0, "drain timeout must be > 0"},
		{w.TopicPrefix == "", "topic prefix must not be empty"},
		{w.Payload != PayloadRandom && w.Payload != PayloadText, "payload must be random or text"},
		{!validCompression(w.Compression), "compression must be none, lz4, zlib, zstd or snappy"},
	}
	for _, c := range checks {
		if c.bad {
			return errcode.New(errcode.InvalidArgument, "loadtest: %s", c.msg)
		}
	}
	return w.validateBacklog()
}

func validSubType(t SubscriptionType) bool {
	switch t {
	case Exclusive, Failover, Shared, KeyShared:
		return true
	}
	return false
}

func validCompression(s string) bool {
	_, err := entry.ParseCompression(s)
	return err == nil
}

func validKeyDist(k KeyDistribution) bool {
	switch k {
	case NoKey, KeyRoundRobin, KeyRandom:
		return true
	}
	return false
}

// TopicNames returns the names of the workload's topics (unpartitioned names).
func (w Workload) TopicNames() []string {
	names := make([]string, w.Topics)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", w.TopicPrefix, i)
	}
	return names
}

// SubscriptionName is the name of a topic's j-th subscription.
func SubscriptionName(j int) string { return fmt.Sprintf("loadtest-sub-%d", j) }

// PartitionName is the name of partition p of topic, in Strata's convention.
func PartitionName(topic string, p int) string {
	return fmt.Sprintf("%s-partition-%d", topic, p)
}
