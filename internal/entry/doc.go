// Package entry is the encoding of one entry's payload: the producer batch a
// serving node writes to a ledger as one unit. It crosses tiers: the serving
// tier encodes and decodes it, and tiering decodes it to write one Arrow row
// per message.
//
// Format, version 1 (all varints are Go's encoding/binary varints):
//
//	magic        2 bytes  "SE"
//	version      1 byte   1
//	flags        1 byte   bits 0-2: compression (0 none, 1 lz4, 2 zlib, 3 zstd,
//	                      4 snappy); bits 3-7: 0
//	producer     uvarint length, then that many bytes (UTF-8)
//	publish time varint, unix nanoseconds (assigned by the serving node)
//	count        uvarint, number of messages (at least 1)
//	when compressed:
//	  size       uvarint, the length of the messages once decompressed
//	             (at most MaxUncompressedBytes), then the compressed
//	             messages up to the checksum; decompressed, they are:
//	count times:
//	  sequence id  uvarint
//	  event time   varint, unix nanoseconds, 0 when unset
//	  key          uvarint length, bytes
//	  properties   uvarint count, then count × (uvarint len, key bytes, uvarint len, value bytes),
//	               in increasing key order
//	  payload      uvarint length, bytes
//	crc32c       4 bytes little-endian, Castagnoli, over every byte before it
//
// The SDK encodes each message of a batch with AppendMessage and sends the
// bytes; the serving node checks them with DecodeMessages (which accepts only
// the bytes AppendMessage writes) and wraps them in an entry with
// AppendEntry, without decoding and re-encoding every message.
//
// A producer may compress its batch's messages (Compress); the node checks
// them decompressed and writes them compressed (AppendCompressedEntry), so
// the bookies and the network carry fewer bytes, and Decode decompresses.
// The checksum covers the bytes as stored.
//
// Message i of the entry at (ledger, entry) has message id (ledger, entry, i).
// Decode checks the checksum first and every length against what is left, so
// a corrupt or hostile payload yields ErrCorrupt and never a panic or a huge
// allocation.
package entry
