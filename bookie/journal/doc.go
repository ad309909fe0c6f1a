// Package journal owns the bookie's on-disk journal: the record format, the
// segment files that hold records, and the recovery scan that finds where
// the valid data of a segment ends. It knows nothing of fencing, LAC or the
// index; the bookie package decides what to write and the journal writes it.
//
// # Files
//
// A journal is a directory of segment files named by a 32-bit id in
// hexadecimal, "%08x.log", starting at 00000001.log. Ids only grow; the one
// exception is a segment that never held a durable record (the bookie
// creates the next segment ahead of need, and at recovery removes one
// whose first page is zeros, Segment.Unwritten), whose id is used again.
// A new segment is created at its configured size, preallocated and,
// where direct I/O is possible and the bookie asks for it, written with
// zeros in full before its first record (Create says why: an fdatasync
// then flushes data only). Records never span segments. Only the newest
// segment that holds records is ever written; every older one was fsync'd
// in full before the newer one received its first record.
//
// A segment no longer needed may instead be set aside as "%08x.free"
// (Segment.Free, named by the id it had) and later made a new segment
// (Recycle): its first page is written with zeros and made durable, then
// it takes its new name, and the rest keeps the records of its earlier
// use. That saves both the zeros and the extent changes of a new file.
// Records carry CRCs seeded with the journal's key and the id of the
// segment they were written into (SeedOf, below), and a free segment only
// ever gets a higher id than it had, so none of its old records is valid
// in its new life: past the end of the data of a segment lie zeros up to
// the end of its page, then zeros or such old records, and either ends
// the scan. Only segments of seeded records are freed.
//
// The key, random, is the caller's to keep (the bookie's JOURNAL_KEY):
// entries' payloads are anybody's bytes, a producer could put records in
// them seeded for ids to come, and the scan, which looks past the end of
// the data, would find them in a recycled segment; without the key such a
// record passes with a chance of 2^-32.
//
// # Record format
//
// A segment is a sequence of records, each laid out as follows (all integers
// little-endian):
//
//	offset size field
//	0      4    length   n = number of bytes after the crc field (30 + len(payload))
//	4      4    crc      CRC-32C (Castagnoli) of the key (uint64) and the segment id
//	                     (uint32) when flags bit 1 is set, then of bytes [0,4) and [8, 8+n)
//	8      1    kind     0xE1 entry, 0xF1 fence, 0xD1 delete
//	9      1    flags    bit 0: recovery add (re-replication into a fenced ledger);
//	                     bit 1: the crc is seeded with the key and the segment id (set
//	                     on every record written since segments are recycled;
//	                     records without it, from earlier versions, are still read)
//	10     4    syncmark offset in this segment up to which the segment was
//	                     fsync'd when this record was written (at most the start of its group)
//	14     8    ledger   ledger id (uint64, never 0)
//	22     8    entry    entry id (int64; -1 for fence and delete records)
//	30     8    lac      last-add-confirmed piggy-backed by the writer (int64, -1 if none;
//	                     -1 for fence and delete records)
//	38     n-30 payload  the entry's bytes (empty for fence and delete records)
//
// A length of zero marks the end of the data (every write leaves zeros up
// to the end of the page that holds the end of the data; after that page a
// new segment has zeros and a recycled one old records). The CRC covers the length and every byte after the
// crc field, so a record whose length was damaged fails its CRC too.
//
// # Direct I/O
//
// Where the file system allows it, a segment created for writing is also
// opened with O_DIRECT, and groups are written with it, bypassing the page
// cache: a direct write must cover whole 4 KiB pages, so each one starts at
// the page that holds the end of the data, repeating the bytes already
// there, and ends with zeros up to the next page boundary (Segment.Append).
// A torn write of such a page leaves the repeated bytes as they were, since
// the old and the new copy are identical. Reads and the recovery scan go
// through the page cache, which the kernel keeps coherent with direct
// writes.
//
// # Group commit and the sync mark
//
// The writer appends a group of records with one write; one fdatasync then
// covers one or more groups, and no record is acknowledged before the
// fdatasync that covers it returns. Every record of a group carries the same
// sync mark: the offset up to which the segment was known durable (a
// completed fdatasync) when the group was written, at most the group's start.
// Before a new segment receives its first record, the previous one is
// fdatasync'd in full.
//
// # Recovery
//
// Scan reads a segment from a known-good offset. At the first record that
// fails to decode (bad CRC, impossible length, or zeros), at offset P:
//
//   - if no valid record follows (valid under this segment's id: the old
//     records of a recycled segment are not), P is the end of the data;
//   - in the newest segment, if every valid record that follows carries a
//     sync mark <= P, those records were written after the last fdatasync
//     that covered P, if any: none of them, and nothing at P, was
//     acknowledged, and the segment is truncated at P (a torn tail);
//   - otherwise (an older segment, or a later record proves P was fsync'd)
//     the bytes at P are damage in
//     the middle of durable data: a Corruption error, reported as Damage and
//     never handed out. The scan resumes at the next valid record.
//
// A bit flip inside the last group of the newest segment cannot be told
// apart from a torn write; like etcd's WAL and BookKeeper's journal, it is
// treated as a torn tail.
package journal
