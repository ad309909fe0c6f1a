package serving

import (
	"fmt"
	"time"

	"github.com/strata-mq/strata/bookie/ledger"
)

// Config configures a serving node. Zero fields take the documented default
// (see withDefaults); Validate rejects values out of range.
type Config struct {
	// NodeID names the node in etcd. Default: the advertised gRPC address.
	NodeID string
	// GRPCAddr is the advertised host:port of the gRPC listener that clients
	// are redirected to. Required.
	GRPCAddr string
	// HTTPAddr is the advertised host:port of the HTTP listener (health,
	// metrics). Informational.
	HTTPAddr string

	// LeaseTTL is the session lease of the node. Every owned topic hangs on
	// it, so it bounds failover: a dead owner's topics are free LeaseTTL after
	// its last keep-alive, then the first lookup moves them. Default 3 s,
	// which keeps failover under 5 s (lease expiry + fence + recover).
	LeaseTTL time.Duration

	// Replication defaults for namespaces whose policy leaves them 0.
	// Default 1/1/1, what standalone uses; `strata serve` sets 3/3/2.
	Ensemble, WriteQuorum, AckQuorum int

	// Ledger roll-over limits: a topic starts a new ledger once its current
	// one holds MaxLedgerEntries entries (default 50,000), MaxLedgerBytes
	// bytes (default 256 MiB) or is MaxLedgerAge old (default 4 h) and has at
	// least one entry.
	MaxLedgerEntries int64
	MaxLedgerBytes   uint64
	MaxLedgerAge     time.Duration

	// CacheBytes bounds the in-memory cache of recent entries per topic that
	// tailing consumers read from. Default 16 MiB.
	CacheBytes int64
	// ReadAheadEntries is how many entries a catch-up read fetches from the
	// bookies at once. Default 100.
	ReadAheadEntries int

	// MaxEntryBytes bounds one encoded batch (entry); a larger batch fails
	// with MessageTooLarge. Default 5 MiB, a bookie's default entry limit.
	MaxEntryBytes int

	// MaxPendingPerProducer bounds the batches a producer may have in flight;
	// beyond it a send fails with ProducerQueueFull (retriable), and so
	// does every later one of its stream. Default 1,000.
	MaxPendingPerProducer int
	// MaxUnackedPerConsumer bounds the entries delivered to one consumer and
	// not yet acknowledged. Default 5,000.
	MaxUnackedPerConsumer int
	// MaxKeySharedWaitingEntries bounds the entries of a key_shared
	// subscription holding messages that wait for their key's consumer (to
	// acknowledge earlier messages of the key, or to grant permits); past
	// it the subscription reads no further until some are delivered.
	// Default 1,000 (Pulsar's look-ahead limit is of the same order).
	MaxKeySharedWaitingEntries int
	// ConsumerQueue bounds the responses waiting for one consumer's sender
	// (gRPC stream); past it the dispatcher waits for the sender. Default
	// 64; at least 3 (a dispatch pass may send twice, and a seek's reply
	// needs a slot).
	ConsumerQueue int

	// CursorFlushInterval is how often dirty cursors are written to etcd.
	// Default 1 s. Acks not yet flushed when an owner dies are redelivered.
	CursorFlushInterval time.Duration
	// MaxCursorBytes bounds each of a persisted cursor's two encodings:
	// its acked ranges, and the acknowledged messages of batches
	// acknowledged in part (a position and a bit per message each: 64 KiB
	// holds some 3,000 batches of 100). Default 64 KiB, at most 256 KiB
	// so that both fit one metadata record; past it the ranges and
	// batches furthest from the mark-delete position are kept only in
	// memory, and delivered again after a takeover.
	MaxCursorBytes int
	// MaxDedupProducers bounds the producer names remembered for
	// deduplication per topic. Default 10,000.
	MaxDedupProducers int

	// TrimInterval is how often consumed ledgers past retention are
	// deleted, messages past their TTL expired, the compaction threshold
	// checked and the policies read again. Default 1 min
	// (--retention-check-interval).
	TrimInterval time.Duration
	// BacklogQuotaCheckInterval is how often each topic compares its
	// subscriptions' backlogs with the namespace's backlog quota. Default
	// 10 s.
	BacklogQuotaCheckInterval time.Duration
	// LoadTimeout bounds a topic takeover (fence, recover, open). Default 30 s.
	LoadTimeout time.Duration
	// RebalanceInterval is how often a node gives up the topics that the
	// placement (rendezvous hashing over the live nodes, as Lookup uses)
	// now assigns to another node, so that topics spread again over a
	// node that joined or came back after a restart. A node that
	// registered less than one interval ago, and a topic loaded less than
	// one interval ago, are left alone for that round. Default 1 min;
	// negative disables (--rebalance-interval).
	RebalanceInterval time.Duration
	// RebalanceMaxUnloads bounds the topics one rebalance round unloads,
	// so that their clients reconnect a few at a time. Default 16.
	RebalanceMaxUnloads int
	// LostBookieRecoveryDelay is how long a bookie that ledgers name must
	// be missing from the registry before the auditing node (the live
	// node with the smallest id) copies the closed ledgers it held to
	// other bookies (ledger.Auditor; BookKeeper's AutoRecovery). Default
	// 5 min; negative disables (--lost-bookie-recovery-delay). Serve runs
	// it; NewNode alone does not.
	LostBookieRecoveryDelay time.Duration
	// LedgerCheckInterval is how often the auditing node starts a pass of
	// the ledger check over every closed ledger: entries a live bookie of
	// their write set misses (it was down while they were written, with
	// no spare to replace it) are copied back to it (ledger.Auditor;
	// BookKeeper's auditorPeriodicCheckInterval). Default 24 h
	// (ledger.DefaultCheckInterval); negative disables
	// (--ledger-check-interval).
	LedgerCheckInterval time.Duration
	// LedgerGCInterval is how often the auditing node starts a pass of the
	// garbage collection of ledger copies: each bookie's ledgers are
	// compared with their metadata, and the copies that nothing names any
	// more (the ledger deleted, or closed and naming the bookie no more)
	// are deleted from it (ledger.Auditor; BookKeeper's bookie garbage
	// collection). Default 15 min (ledger.DefaultCollectInterval);
	// negative disables (--ledger-gc-interval).
	LedgerGCInterval time.Duration
	// OverreplicatedLedgerGrace is how long the garbage collection must
	// have seen a closed ledger's copy on a bookie the ledger names no
	// more before it deletes it (BookKeeper's
	// gcOverreplicatedLedgerWaitTime). Default 24 h
	// (ledger.DefaultOverreplicatedGrace); negative: such copies stay
	// (--overreplicated-ledger-grace).
	OverreplicatedLedgerGrace time.Duration
	// MetaTimeout bounds one metadata call. Default 10 s.
	MetaTimeout time.Duration
	// NoTopicAutoCreation refuses to produce to or subscribe to a topic
	// that was not created (TOPIC_NOT_FOUND), as Pulsar's
	// allowAutoTopicCreation=false and Kafka's
	// auto.create.topics.enable=false: a misspelt name fails instead of
	// making a topic. Default off: topics are created on first use.
	NoTopicAutoCreation bool
	// DefaultNumPartitions is how many partitions a topic created on first
	// use gets, as Pulsar's defaultNumPartitions with
	// allowAutoTopicCreationType=partitioned and Kafka's num.partitions.
	// Default 0: such topics are not partitioned.
	DefaultNumPartitions int
}

// maxCursorBytes is the most MaxCursorBytes may be: two encodings of it,
// base64 in the cursor's JSON, stay well within metadata.MaxRecordBytes.
const maxCursorBytes = 256 << 10

// DefaultBacklogQuotaCheckInterval is Config.BacklogQuotaCheckInterval's
// default.
const DefaultBacklogQuotaCheckInterval = 10 * time.Second

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.NodeID == "" {
		c.NodeID = c.GRPCAddr
	}
	setDur(&c.LeaseTTL, 3*time.Second)
	setInt(&c.Ensemble, 1)
	setInt(&c.WriteQuorum, 1)
	setInt(&c.AckQuorum, 1)
	if c.MaxLedgerEntries == 0 {
		c.MaxLedgerEntries = 50_000
	}
	if c.MaxLedgerBytes == 0 {
		c.MaxLedgerBytes = 256 << 20
	}
	setDur(&c.MaxLedgerAge, 4*time.Hour)
	if c.CacheBytes == 0 {
		c.CacheBytes = 16 << 20
	}
	setInt(&c.ReadAheadEntries, 100)
	setInt(&c.MaxEntryBytes, 5<<20+64<<10) // a 5 MiB message plus batch framing; the bookie default
	setInt(&c.MaxPendingPerProducer, 1000)
	setInt(&c.MaxUnackedPerConsumer, 5000)
	setInt(&c.MaxKeySharedWaitingEntries, 1000)
	setInt(&c.ConsumerQueue, 64)
	setDur(&c.CursorFlushInterval, time.Second)
	setInt(&c.MaxCursorBytes, 64<<10)
	setInt(&c.MaxDedupProducers, 10_000)
	setDur(&c.TrimInterval, time.Minute)
	setDur(&c.BacklogQuotaCheckInterval, DefaultBacklogQuotaCheckInterval)
	setDur(&c.LoadTimeout, 30*time.Second)
	setDur(&c.MetaTimeout, 10*time.Second)
	setDur(&c.RebalanceInterval, time.Minute)
	setDur(&c.LostBookieRecoveryDelay, 5*time.Minute)
	setDur(&c.LedgerCheckInterval, ledger.DefaultCheckInterval)
	setDur(&c.LedgerGCInterval, ledger.DefaultCollectInterval)
	setDur(&c.OverreplicatedLedgerGrace, ledger.DefaultOverreplicatedGrace)
	if c.RebalanceMaxUnloads == 0 {
		c.RebalanceMaxUnloads = 16
	}
	return c
}

func setInt(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

func setDur(p *time.Duration, d time.Duration) {
	if *p == 0 {
		*p = d
	}
}

// Validate checks c after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.GRPCAddr == "":
		return fmt.Errorf("serving: GRPCAddr is required")
	case c.LeaseTTL < time.Second:
		return fmt.Errorf("serving: LeaseTTL %v below 1s", c.LeaseTTL)
	case c.Ensemble < 1 || c.WriteQuorum < 1 || c.AckQuorum < 1:
		return fmt.Errorf("serving: quorums must be positive")
	case c.WriteQuorum > c.Ensemble || c.AckQuorum > c.WriteQuorum:
		return fmt.Errorf("serving: want Ensemble >= WriteQuorum >= AckQuorum, got %d/%d/%d", c.Ensemble, c.WriteQuorum, c.AckQuorum)
	case c.MaxLedgerEntries < 1 || c.MaxLedgerAge < 0:
		return fmt.Errorf("serving: ledger roll limits must be positive")
	case c.CacheBytes < 0 || c.ReadAheadEntries < 1:
		return fmt.Errorf("serving: cache and read-ahead must be positive")
	case c.MaxPendingPerProducer < 1 || c.MaxUnackedPerConsumer < 1 || c.MaxKeySharedWaitingEntries < 1 || c.ConsumerQueue < 3:
		return fmt.Errorf("serving: producer and consumer limits must be positive")
	case c.RebalanceMaxUnloads < 0:
		return fmt.Errorf("serving: RebalanceMaxUnloads must be positive")
	case c.TrimInterval < 0 || c.BacklogQuotaCheckInterval < 0 || c.CursorFlushInterval < 0:
		return fmt.Errorf("serving: check and flush intervals must be positive")
	case c.MaxCursorBytes < 1024 || c.MaxCursorBytes > maxCursorBytes:
		return fmt.Errorf("serving: MaxCursorBytes %d not within 1024 and %d", c.MaxCursorBytes, maxCursorBytes)
	}
	return nil
}
