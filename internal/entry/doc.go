// Package entry is the encoding of one entry's payload: the producer batch a
// serving node writes to a ledger as one unit. It crosses tiers: the serving
// tier encodes and decodes it, and tiering decodes it to write one Arrow row
// per message.
//
// Format, version 1 (all varints are Go's encoding/binary varints):
//
//	magic        2 bytes  "SE"
//	version      1 byte   1
//	flags        1 byte   0 (reserved)
//	producer     uvarint length, then that many bytes (UTF-8)
//	publish time varint, unix nanoseconds (assigned by the serving node)
//	count        uvarint, number of messages (at least 1)
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
// Message i of the entry at (ledger, entry) has message id (ledger, entry, i).
// Decode checks the checksum first and every length against what is left, so
// a corrupt or hostile payload yields ErrCorrupt and never a panic or a huge
// allocation.
package entry
