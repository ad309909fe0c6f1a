// Package index owns the bookie's index: for every ledger, the location of
// each stored entry in the journal, the ledger's LAC and last entry, and
// whether it is fenced or deleted; plus the per-segment count of live
// entries that tells when a journal segment can be removed. It also owns the
// checkpoint file that lets a restart skip rescanning the whole journal.
//
// A Table is not safe for concurrent use; the bookie guards it.
//
// # Checkpoint format
//
// A checkpoint is the whole Table plus the journal position it covers: every
// record before Position is reflected in it, and recovery replays only the
// records from Position on. Two slots, checkpoint-0 and checkpoint-1, are
// written alternately (write to a temporary file, fsync, rename, fsync the
// directory), so one valid checkpoint always survives a crash during a write;
// Load picks the valid one with the higher sequence number. All integers are
// little-endian:
//
//	offset size  field
//	0      8     magic "STRIDX01"
//	8      8     seq      sequence number of this checkpoint
//	16     4     file     journal segment id of Position
//	20     4     offset   byte offset of Position in that segment
//	24     4     count    number of ledger blocks that follow
//	28     ...   count ledger blocks:
//	               8  ledger id
//	               1  flags (bit 0 fenced, bit 1 deleted)
//	               8  lac (int64)
//	               8  last entry (int64)
//	               4  n, number of entries (0 for a deleted ledger)
//	               n × 20: entry id (int64), segment id (uint32),
//	                       offset (uint32), record length (uint32)
//	end-4  4     CRC-32C (Castagnoli) of every byte before it
package index
