// Package cursor is a subscription's acknowledgement state: a mark-delete
// position and the acknowledgements past it. It is a pure state machine (no
// I/O, no clock); the serving tier persists what Encode returns to etcd.
//
// Everything at or before MarkDelete is acknowledged. Past it, the cursor
// keeps the set of fully acknowledged entries, per ledger, as sorted ranges
// of entry ids, and for entries of which only some messages are acknowledged
// a bitset over the entry's batch. Advance moves MarkDelete over the run of
// acknowledged entries that follows it; the caller supplies the successor of
// a position because only the managed ledger knows where ledgers end.
//
// Invariant: MarkDelete never moves past a message that was not acknowledged.
// Encode is bounded (Config.MaxRanges): when there are more ranges than that,
// the ranges farthest from MarkDelete are left out of the encoding. Losing an
// acknowledgement that way can only cause a redelivery, never a skip.
//
// Encoding, version 1 (Go varints):
//
//	version   1 byte  1
//	ledgers   uvarint count, then per ledger:
//	            ledger id uvarint, range count uvarint,
//	            per range: first entry varint, length-1 uvarint
//	partial   uvarint count, then per entry:
//	            ledger id uvarint, entry varint, batch size uvarint,
//	            bitset uvarint length + bytes (bit i set: message i acked)
package cursor
