// Package segment is the format of an offloaded ledger (or of one part of
// it) in the object store: one Apache Arrow IPC file, readable by any
// stock Arrow reader (pyarrow.ipc.open_file, DuckDB, pandas), with one row
// per message and a per-record-batch index.
//
// It owns encoding (Writer), whole-object verification (Verify), reading
// one record batch by byte range (ReadBatch, DecodeBatch) and reading the
// index from the footer (ReadIndex). It does not know about stores, keys,
// ledger metadata in etcd or entry payload formats: package tiering does.
//
// # Schema (format version 1)
//
//	ledger        uint64
//	entry         int64
//	batch_index   int32                 message index inside the entry
//	publish_time  timestamp[ns, UTC]
//	event_time    timestamp[ns, UTC]    null when the producer set none
//	producer      utf8
//	sequence_id   uint64
//	key           utf8                  "" when none
//	properties    map<utf8, utf8>       keys sorted
//	payload       binary
//
// Rows are in (entry, batch_index) order. A record batch holds whole
// entries, closes at Config.MaxBatchBytes (default 1 MiB of variable-length
// data) or Config.MaxBatchRows (default 8192), and is uncompressed.
//
// # Bytes of the file
//
// The file is the Arrow IPC file format
// (https://arrow.apache.org/docs/format/Columnar.html#ipc-file-format),
// little-endian, with no dictionaries:
//
//	offset 0   "ARROW1" 0x00 0x00                      magic, padded to 8
//	offset 8   0xFFFFFFFF, int32 L, L bytes            schema message (flatbuffer
//	                                                   Message{Schema}, padded to 8)
//	then, per record batch i (the index's Offset and Length cover exactly this):
//	           0xFFFFFFFF, int32 M, M bytes metadata   flatbuffer Message{RecordBatch}
//	           body                                    the batch's buffers, 8-aligned
//	then       footer flatbuffer                       Footer{schema, record batch Blocks}
//	           int32 footer length, "ARROW1"
//
// The schema, in both the schema message and the footer, carries custom
// metadata:
//
//	"strata.format" = "1"
//	"strata.index"  = JSON: {"version":1,"ledger":L,"first_entry":F,"last_entry":E,
//	                  "rows":N,"batches":[{"first_entry","last_entry",
//	                  "first_publish_time","last_publish_time","offset","length",
//	                  "rows","crc32c"}, ...]}
//
// Every number in the index JSON is left-justified and space-padded to 20
// characters (still valid JSON). That fixes the index's length before the
// batch offsets are known: the writer encodes the file with an all-zero
// index of the same length, then overwrites it in both places with the real
// one. first/last_publish_time of a batch are the minimum and maximum
// publish time of its rows. crc32c is CRC-32C (Castagnoli) of the batch's
// bytes [offset, offset+length), the whole encapsulated message.
//
// # Reading
//
// The same index is stored in the ledger's metadata (metadata.BatchIndex),
// so a reader needs no footer read: it fetches [offset, offset+length),
// checks the CRC32C, and decodes the message as a one-batch IPC stream
// (schema message + batch message + end-of-stream). Any mismatch —
// checksum, row count, entry range, schema — is ErrCorruption
// (errcode.Corruption).
package segment
