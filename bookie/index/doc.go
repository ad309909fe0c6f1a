// Package index owns the bookie's index: for every ledger, the location of
// each stored entry in the journal, the ledger's LAC and last entry, and
// whether it is fenced or deleted; plus the per-segment count of live
// entries that tells when a journal segment can be removed. It also owns the
// two files that let a restart skip rescanning the whole journal: a segment
// index beside each sealed journal segment, and the checkpoint of ledger
// states.
//
// A Table is not safe for concurrent use; the bookie guards it.
//
// # Why two files
//
// Entry locations are written once per journal segment, when it is sealed,
// and never again: the cost of indexing is proportional to what was
// written, not to what is stored. An earlier design checkpointed the whole
// table (every location) once a second; at a few hundred thousand entries
// that was megabytes written and fsync'd on the journal's disk each time,
// and it grew without bound with the bookie's contents.
//
// Fences and deletes must outlive the segments that recorded them (a
// segment with no live entry is removed), so the checkpoint keeps every
// ledger's flags, LAC and last entry: tens of bytes a ledger, no entries.
// A deleted ledger is kept only while a segment that may hold one of its
// records is on disk (Table.Prune): after that no replay can meet them.
//
// Recovery loads the newest valid checkpoint, then applies every journal
// segment still on disk in order: from its segment index when the segment is
// sealed and its index is valid, else by scanning the segment (the newest
// one always, since it may have a torn tail). Applying a record to a state
// that already reflects it changes nothing: a put sets a location (the last
// one wins), LAC and last entry are maxima, a fence is a flag, and a delete
// wipes the ledger and ignores every later put. So the result is the full
// replay's, minus the removed segments, whose entries were all dead and
// whose fences and deletes the checkpoint holds.
//
// # Segment index format
//
// A file "%08x.idx" beside segment "%08x.log" lists every record of that
// segment in journal order. It is written once, after the segment was
// sealed (fsync'd in full), with a rename and no fsync of its own: it is
// immutable and checked by CRC, so one lost or torn by a crash only makes
// recovery scan that segment instead. All integers are little-endian:
//
//	offset size  field
//	0      8     magic "STRSIX01"
//	8      4     segment id
//	12     4     count    number of records that follow
//	16     ...   count × 33:
//	               1  op (1 put, 2 fence, 3 delete)
//	               8  ledger id
//	               8  entry id (int64; -1 for fence and delete)
//	               8  piggy-backed lac (int64; -1 if none)
//	               4  offset of the record in the segment
//	               4  record length
//	end-4  4     CRC-32C (Castagnoli) of every byte before it
//
// # Checkpoint format
//
// A checkpoint holds every ledger's state as of a journal position: every
// record before Position is reflected in it. Two slots, checkpoint-0 and
// checkpoint-1, are written alternately (write to a temporary file, fsync,
// rename, fsync the directory), so one valid checkpoint always survives a
// crash during a write; Load picks the valid one with the higher sequence
// number. A segment may be removed only when it lies before the position of
// both slots. All integers are little-endian:
//
//	offset size  field
//	0      8     magic "STRIDX02"
//	8      8     seq      sequence number of this checkpoint
//	16     4     file     journal segment id of Position
//	20     4     offset   byte offset of Position in that segment
//	24     4     count    number of ledger blocks that follow
//	28     ...   count × 25:
//	               8  ledger id
//	               1  flags (bit 0 fenced, bit 1 deleted)
//	               8  lac (int64; -1 for a deleted ledger)
//	               8  last entry (int64); for a deleted ledger, the id of
//	                  the segment holding its delete record (-1 in
//	                  checkpoints written before 2026-11-22 03:00: the
//	                  segment of Position then stands for it)
//	end-4  4     CRC-32C (Castagnoli) of every byte before it
//
// The first format, "STRIDX01", followed each ledger block with a 4-byte
// entry count and that many 20-byte entries (entry id, segment id, offset,
// record length). Load still reads it, so that a data directory from before
// segment indexes opens; the bookie then scans its segments once and writes
// their indexes (upgrade_test.go does this with a real bookie).
package index
