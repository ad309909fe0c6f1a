// Package rpcpool is the gRPC buffer pool every Strata server and client
// uses for the bytes of received messages and marshalled ones. It crosses
// tiers: the bookie and serving servers, the ledger client and the SDK all
// install it.
//
// gRPC's default pool clears every buffer it hands out, and it rounds a
// request up to the next of a few sizes (256 B, 4, 16, 32 KiB, 1 MiB), so a
// 64 KiB entry costs clearing 1 MiB. On the bookie's 64 KiB add path that was
// 18% of all CPU (docs/bookie.md). This pool has one tier per power of two
// and does not clear: gRPC reads a frame into exactly the length it asked
// for, and the protobuf codec copies bytes fields out before the buffer is
// returned, so stale bytes are never read. (The bookie's codec leaves an
// add's payload in its buffer instead, and returns the buffer once the add
// is answered: bookie/codec.go.)
package rpcpool
