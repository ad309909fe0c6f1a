// Package bookie is Strata's storage node: it stores the entries of ledgers
// in an fsync'd group-commit journal, indexes them by (ledger, entry), fences
// ledgers, serves LACs, deletes ledgers and reclaims their space, and serves
// all of it over gRPC (bookiepb.BookieServer). A bookie knows nothing about
// topics.
//
// # Pieces
//
//   - bookie/journal: segment files, the record format (documented byte by
//     byte in its doc.go) and the recovery scan.
//   - bookie/index: the in-memory index, the segment index and checkpoint
//     file formats, and why recovery from them is exact.
//   - this package: the journal writer (writer.go) with its deterministic
//     group-commit core (group.go), reads, ledger and entry listings
//     and LAC long-poll (read.go), segment indexes, checkpoints and segment
//     reclaim (checkpoint.go), compaction (compact.go), read-only mode for
//     a full disk (diskfull.go), the scrubber, which reads every stored
//     entry back and marks the damaged ones (scrub.go), the gRPC service
//     (service.go), Open's recovery, the journal's key and the data
//     directory's lock (bookie.go), and the data directory's binding to one cluster
//     (cluster.go: Config.ClusterID, kept in CLUSTER_ID, BookKeeper's
//     cookie).
//
// # Write path
//
// Every add, fence and delete is a request on one bounded queue
// (Config.QueueLength). Two goroutines form the journal pipeline, like
// BookKeeper's journal and force-write threads (writer.go):
//
//   - the writer takes the first queued request and whatever else is queued
//     (stopping at Config.GroupMaxBytes, or Config.GroupMaxDelay after the
//     first), decides in arrival order which requests are written (plan in
//     group.go: adds to fenced ledgers are rejected unless flagged recovery,
//     a fence or delete takes effect for every request after it, including
//     those of later groups not yet durable), and writes the group to the
//     active segment with one write call;
//   - the syncer takes every group written so far, issues one fdatasync
//     covering all of them, updates the in-memory index and only then answers
//     the requests, in write order.
//
// A full segment is fdatasync'd and the writer moves to the next one, which
// a background goroutine created ahead of need (rotation does not wait for
// a file to be made); recovery removes an unused one.
//
// While an fdatasync runs, the writer keeps collecting and writing the adds
// that arrive; the next fdatasync covers them all. When no fdatasync is
// running and the queue is empty, the writer writes at once: at low load no
// add waits GroupMaxDelay for company. The writer never runs more than 16
// groups ahead of the syncer.
//
// # Invariants
//
//  1. An add is acknowledged only after the fdatasync that covers its record
//     (unless Config.UnsafeNoFsync).
//  2. No non-recovery add to a ledger is acknowledged unless it was ordered
//     before the ledger's fence record, so every acknowledged add is at or
//     below the last entry Fence returned. The fence record is durable before
//     Fence returns.
//  3. Every read from disk verifies the record's CRC and that the record is
//     the entry asked for; a mismatch is ErrCorruption and no bytes are
//     returned, and the entry is marked damaged in the index: ListEntries
//     leaves it out until a new copy of it (the ledger check's) replaces
//     the record.
//  4. A deleted ledger is unreadable once Delete returns, also after restart.
//  5. A segment is removed only when it holds no live entry and every
//     checkpoint slot covers it (so its fence and delete records are never
//     lost).
//
// # Index and restarts
//
// The index is in memory: per ledger, entry → (segment, offset, length),
// LAC, last entry, fenced and deleted flags (a ledger's entries in a slice
// indexed by entry id). Index updates are a few stores on the syncer
// goroutine after the fsync. Its durable copy is in two parts, both written
// by a separate goroutine, never on the ack path: a segment index beside
// each journal segment once it is sealed (the writer keeps its records in
// memory meanwhile), so entry locations are written once; and a checkpoint
// of every ledger's flags, LAC and last entry (25 bytes a ledger), every
// Config.CheckpointInterval and on segment rotation (at most once per tenth
// of that). Open loads the newest valid checkpoint, applies each sealed
// segment's index and scans only the newest segment (and any sealed one
// whose index is missing or damaged), truncating a torn tail (see
// bookie/journal). A new segment is started on every open.
//
// # Reclaim and compaction
//
// A segment is let go of once it holds no live entry and both checkpoint
// slots cover it (checkpoint.go): kept as a free segment, up to
// Config.JournalRecycleSegments of them, to be written again as a later
// segment (journal.Recycle: blocks already written make fast fdatasyncs
// without zeros to write), or else removed. A sealed segment whose live entries are
// few (Config.CompactLiveFraction) is compacted (compact.go): each live
// entry is read, CRC-checked, and re-appended through the journal as a
// relocation request, which ignores fences (it is not a new add) and is
// applied to the index only if the entry still lives where it was read from.
// The segment then holds no live entry and is reclaimed.
package bookie
