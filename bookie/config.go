package bookie

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/bookie/journal"
)

// Config configures a Bookie. The zero value of every field but DataDir
// means its documented default.
type Config struct {
	// DataDir holds the journal segments, their indexes and the checkpoints.
	// Required.
	DataDir string
	// ID names this bookie in Health answers. Default: a random id created
	// on first start and kept in DataDir/BOOKIE_ID.
	ID string
	// ClusterID is the instance id of the cluster whose metadata the
	// bookie is registered in (metadata.Store.InitClusterID). Open
	// records it in DataDir/CLUSTER_ID on first start and afterwards
	// refuses, with *ClusterMismatchError, any other. Default: empty, for
	// a bookie with no metadata, which checks nothing.
	ClusterID string

	// MaxEntryBytes bounds one entry's payload. Default 5 MiB + 64 KiB
	// (DefaultMaxEntryBytes: a message at the default 5 MiB limit and its
	// batch framing); larger adds fail with ErrTooLarge
	// (errcode.MessageTooLarge).
	MaxEntryBytes int
	// MaxInFlightBytesPerStream bounds the payload bytes of adds received on
	// one Add stream and not yet answered. Default 64 MiB; an add over the
	// limit fails with ErrTooManyInFlight (errcode.TooManyInFlight).
	MaxInFlightBytesPerStream int
	// MaxInFlightAddsPerStream bounds the number of unanswered adds on one
	// stream; past it the server stops reading the stream (flow control).
	// Default 4096.
	MaxInFlightAddsPerStream int
	// MaxReadBytes caps the payload bytes of one Read call (the request's
	// max_bytes may only lower it; one entry is always sent). Default 16 MiB.
	MaxReadBytes int
	// MaxLongPoll caps ReadLAC's wait. Default 30 s.
	MaxLongPoll time.Duration

	// GroupMaxBytes stops collecting a group commit at this many bytes.
	// Default 512 KiB (BookKeeper's journalBufferedWritesThreshold).
	GroupMaxBytes int
	// GroupMaxDelay stops collecting a group commit this long after its
	// first record, even if more adds keep arriving. The writer never waits
	// on an empty queue: a group is written as soon as no add is pending.
	// Default 2 ms (BookKeeper's journalMaxGroupWaitMSec).
	GroupMaxDelay time.Duration
	// QueueLength bounds the adds waiting for the journal writer. Default 8192.
	QueueLength int
	// UnsafeNoFsync skips fdatasync: acknowledged adds may be LOST on a
	// machine crash or power loss. For benchmarks only.
	UnsafeNoFsync bool
	// JournalFileBytes is the size of a journal segment (preallocated, and
	// written with zeros when created while the journal writes well below
	// the disk's bandwidth: prewriteNext).
	// Default 64 MiB; at most 1 GiB.
	JournalFileBytes int64
	// JournalRecycleSegments is how many reclaimed journal segments are
	// kept, as "%08x.free" files, to be written again as new segments
	// instead of being deleted: their blocks are already written, so the
	// journal gets the fast fdatasyncs of a segment written with zeros
	// without writing the zeros (journal.Recycle). A bookie whose ledgers
	// are deleted as fast as they are written (offloaded to object
	// storage) then writes only into recycled segments. They hold disk
	// space: up to this many times JournalFileBytes. Default 4; negative
	// keeps none.
	JournalRecycleSegments int
	// CheckpointInterval is how often ledger states are checkpointed and
	// sealed segments' indexes written (and reclaimable segments removed).
	// Default 10 s.
	CheckpointInterval time.Duration
	// CompactLiveFraction: a sealed segment whose live entries take less
	// than this fraction of JournalFileBytes is compacted (its live entries
	// are copied into the active segment, then it is removed). Default 0.25;
	// negative disables compaction.
	CompactLiveFraction float64
	// Registerer receives the bookie's metrics (metrics.go). nil: none
	// registered.
	Registerer prometheus.Registerer
	// SlowFsync logs a warning when one fdatasync takes longer. Default 1 s.
	SlowFsync time.Duration
	// DiskUsageThreshold: at or over this fraction of its disk used, the
	// bookie turns read-only (diskfull.go): new adds fail with ErrReadOnly
	// so that writers move to other bookies. Default 0.95; negative
	// disables the check.
	DiskUsageThreshold float64
	// DiskUsageLowWater: a read-only bookie takes adds again once usage is
	// under this fraction. Default DiskUsageThreshold − 0.05 (half the
	// threshold for a threshold under 0.1).
	DiskUsageLowWater float64
	// DiskCheckInterval is how often the disk usage is measured. Default 10 s.
	DiskCheckInterval time.Duration
	// ScrubInterval is how often the scrubber (scrub.go) reads every
	// stored entry back and checks its record, so that damage on the
	// disk is found and copied back by the auditor's ledger check before
	// a read needs the entry. A pass starts this long after the previous
	// one started (at once if that one took longer); the first starts at
	// a random time within the first interval. Default 24 h, the ledger
	// check's own default interval (BookKeeper's localScrubPeriod is off
	// by default); negative disables the scrubber.
	ScrubInterval time.Duration
	// ScrubBytesPerSecond bounds how fast the scrubber reads records, so
	// that a pass does not take the disk from adds and reads. Default
	// 16 MiB/s: a few percent of the journal disk's bandwidth, and
	// 1.3 TiB a day, more than a bookie's in-memory index is meant to
	// hold. Negative: no bound (tests).
	ScrubBytesPerSecond int64
}

// Defaults.
const (
	// DefaultMaxEntryBytes fits a message of the default 5 MiB limit plus
	// its batch framing; serving and the ledger client use the same bound.
	DefaultMaxEntryBytes             = 5<<20 + 64<<10
	DefaultMaxInFlightBytesPerStream = 64 << 20
	DefaultMaxInFlightAddsPerStream  = 4096
	DefaultMaxReadBytes              = 16 << 20
	DefaultMaxLongPoll               = 30 * time.Second
	DefaultGroupMaxBytes             = 512 << 10
	DefaultGroupMaxDelay             = 2 * time.Millisecond
	DefaultQueueLength               = 8192
	DefaultJournalFileBytes          = 64 << 20
	DefaultCheckpointInterval        = 10 * time.Second
	DefaultSlowFsync                 = time.Second
	DefaultCompactLiveFraction       = 0.25
	DefaultJournalRecycleSegments    = 4
	DefaultDiskUsageThreshold        = 0.95
	DefaultDiskCheckInterval         = 10 * time.Second
	DefaultScrubInterval             = 24 * time.Hour
	DefaultScrubBytesPerSecond       = 16 << 20

	maxJournalFileBytes = 1 << 30
	// maxRecycleSegments bounds JournalRecycleSegments: a thousand free
	// segments is already more disk than a bookie should hold idle.
	maxRecycleSegments = 1024
)

func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	orDefault(&c.MaxEntryBytes, DefaultMaxEntryBytes)
	orDefault(&c.MaxInFlightBytesPerStream, DefaultMaxInFlightBytesPerStream)
	orDefault(&c.MaxInFlightAddsPerStream, DefaultMaxInFlightAddsPerStream)
	orDefault(&c.MaxReadBytes, DefaultMaxReadBytes)
	orDefault(&c.MaxLongPoll, DefaultMaxLongPoll)
	orDefault(&c.GroupMaxBytes, DefaultGroupMaxBytes)
	orDefault(&c.GroupMaxDelay, DefaultGroupMaxDelay)
	orDefault(&c.QueueLength, DefaultQueueLength)
	orDefault(&c.JournalFileBytes, DefaultJournalFileBytes)
	orDefault(&c.CheckpointInterval, DefaultCheckpointInterval)
	orDefault(&c.SlowFsync, DefaultSlowFsync)
	orDefault(&c.CompactLiveFraction, DefaultCompactLiveFraction)
	orDefault(&c.JournalRecycleSegments, DefaultJournalRecycleSegments)
	orDefault(&c.DiskUsageThreshold, DefaultDiskUsageThreshold)
	orDefault(&c.DiskCheckInterval, DefaultDiskCheckInterval)
	orDefault(&c.ScrubInterval, DefaultScrubInterval)
	orDefault(&c.ScrubBytesPerSecond, DefaultScrubBytesPerSecond)
	return c
}

// lowWater is DiskUsageLowWater or its default.
func (c Config) lowWater() float64 {
	if c.DiskUsageLowWater != 0 {
		return c.DiskUsageLowWater
	}
	return c.DiskUsageThreshold - min(0.05, c.DiskUsageThreshold/2)
}

// Validate reports the first invalid field (after applying defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	maxRecord := int64(c.MaxEntryBytes) + journal.HeaderSize
	switch {
	case c.DataDir == "":
		return fmt.Errorf("bookie: DataDir is required")
	case c.MaxEntryBytes < 0 || c.MaxEntryBytes > journal.MaxPayload:
		return fmt.Errorf("bookie: MaxEntryBytes %d out of range (0, %d]", c.MaxEntryBytes, journal.MaxPayload)
	case c.MaxInFlightBytesPerStream < c.MaxEntryBytes:
		return fmt.Errorf("bookie: MaxInFlightBytesPerStream %d below MaxEntryBytes %d", c.MaxInFlightBytesPerStream, c.MaxEntryBytes)
	case c.MaxInFlightAddsPerStream < 1, c.QueueLength < 1, c.MaxReadBytes < 1, c.GroupMaxBytes < 1:
		return fmt.Errorf("bookie: limits must be positive")
	case c.GroupMaxDelay < 0, c.MaxLongPoll < 0, c.CheckpointInterval < 0, c.SlowFsync < 0:
		return fmt.Errorf("bookie: durations must not be negative")
	case c.DiskUsageThreshold > 1:
		return fmt.Errorf("bookie: DiskUsageThreshold %v above 1", c.DiskUsageThreshold)
	case c.DiskUsageThreshold > 0 && (c.DiskUsageLowWater < 0 || c.lowWater() > c.DiskUsageThreshold):
		return fmt.Errorf("bookie: DiskUsageLowWater %v must be in [0, DiskUsageThreshold %v]", c.DiskUsageLowWater, c.DiskUsageThreshold)
	case c.DiskCheckInterval < 0:
		return fmt.Errorf("bookie: DiskCheckInterval must not be negative")
	case c.CompactLiveFraction >= 1:
		return fmt.Errorf("bookie: CompactLiveFraction %v must be below 1", c.CompactLiveFraction)
	case c.JournalRecycleSegments > maxRecycleSegments:
		return fmt.Errorf("bookie: JournalRecycleSegments %d above %d", c.JournalRecycleSegments, maxRecycleSegments)
	case c.JournalFileBytes > maxJournalFileBytes:
		return fmt.Errorf("bookie: JournalFileBytes %d above %d", c.JournalFileBytes, maxJournalFileBytes)
	case c.JournalFileBytes < int64(c.GroupMaxBytes)+maxRecord:
		return fmt.Errorf("bookie: JournalFileBytes %d must hold GroupMaxBytes plus one max entry (%d)", c.JournalFileBytes, int64(c.GroupMaxBytes)+maxRecord)
	}
	return nil
}
