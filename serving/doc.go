// Package serving is Strata's serving tier: a stateless node that owns
// topics through its etcd session lease and serves the Broker gRPC protocol
// (servingpb) for them: lookups, producers, consumers and admin calls.
//
// It owns, per topic it serves: the managed ledger (the topic's ordered list
// of ledgers), the one open ledger writer, producer deduplication state, the
// subscriptions with their cursors and dispatchers, and a bounded cache of
// recent entries. It does not own bytes on disk (bookies do), metadata
// (etcd, package metadata) or offloaded segments (package tiering).
//
// # Ownership and takeover
//
// A node opens one session lease (Config.LeaseTTL, default 3 s) and registers
// under it. Owning a topic is a key attached to that lease, created by
// AcquireOwnership iff the topic has no owner. Lookup answers the owner, or
// picks a live node by rendezvous hashing when there is none (that node
// takes the topic on the first request). A topic-scoped request at a node
// that does not own the topic fails with NotOwner and the owner's address.
// Owned topics stay put until their owner goes; so that a node that joins
// or comes back gets its share, each node periodically unloads the topics
// the hashing now gives another node (rebalance.go).
//
// Taking a topic over: acquire the key; read the managed ledger; if its last
// ledger is open, fence and recover it on the bookies (ledger Recover) and
// read its entries to rebuild the producers' highest sequence ids; create a
// new ledger; compare-and-swap the managed ledger to add it; load cursors;
// serve. An owner drops a topic at once (producers and consumers get a
// retriable TopicFenced/NotOwner error and look up again) when an append
// fails (fenced or otherwise), when a managed-ledger or cursor CAS fails, or
// when its session ends (every topic is dropped). An owner that gives a
// topic up gracefully (unload, rebalance, Close) first answers the batches
// in flight, closes the ledger and records it closed in the managed ledger
// with the producers' sequence ids, so that the next owner neither recovers
// nor reads it (unload.go); resends of batches it wrote are answered from
// its last entries, read back on demand (receipts.go).
//
// # Write path
//
// One producer batch is one entry (internal/entry), stamped with a publish
// time that strictly increases per topic. Appends are pipelined; the ledger
// writer completes them in entry order, and a topic goroutine turns the
// completions into receipts (in order), cache inserts and dispatcher
// wake-ups. A batch whose last sequence id is at or below the highest one
// sent for that producer name is a resend: it is answered with the original
// position (duplicate=true) and never written again. The highest sequence
// ids are snapshotted into the managed ledger at every roll and graceful
// unload; the entries of the ledger recovered at takeover carry the rest. A ledger rolls at
// MaxLedgerEntries, MaxLedgerBytes or MaxLedgerAge (defaults 50,000 entries,
// 256 MiB, 4 h).
//
// # Read path and cursors
//
// A subscription has a mark-delete position and the set of entries acked
// past it (ackState), ordered by the managed ledger: ledger ids are unique
// but not monotonic across owners (each metadata store reserves its own id
// range), so positions are never compared by id. The mark-delete position
// only moves over acknowledged entries; an entry counts as acked once all
// its messages are. Durable cursors are written to etcd every
// CursorFlushInterval (1 s) when changed, as mark-delete plus acked ranges
// (repeated uvarint ledger, first entry, count) plus the acked messages of
// the entries acked in part (repeated uvarint ledger, entry, message count
// n, then an n-bit set, least significant bit first, of the messages
// acked), each encoding bounded by MaxCursorBytes and keeping what is
// nearest the mark-delete position. Acks past the bounds or not yet
// flushed are redelivered after a takeover, never lost; a corrupt encoding
// is logged and redelivered likewise. The next owner marks an entry's
// stored messages acked when it reads the entry, so that only the others
// are delivered (batchacks.go); a seek or a reset forgets them.
// Acks may name messages not read yet (a client sends those it kept while
// it reconnected, and a topic just loaded has read nothing): they are
// kept, bounded and in memory, and applied as their entries are read
// (earlyacks.go). A cursor's epoch, stored with it and changed by every
// seek and executed reset before the move is answered, drops the acks
// made before a move (cursorepoch.go).
//
// Dispatch is one goroutine per subscription: redeliveries first, then the
// next entry from the cache or, on a miss, from the bookies with read-ahead.
// Exclusive subscriptions take one consumer; shared ones round-robin
// entries among consumers with permits; failover ones deliver to one active
// consumer (sorted by name, the one at the partition's index modulo their
// number) and hand its unacked entries to the next active one when that
// changes. Key_shared ones dispatch message by message, since a producer's
// batch mixes keys: each key to the consumer owning its hash on a
// consistent-hash ring, a key that moved waiting until the consumer that
// had it acknowledges its earlier messages (keyshared.go). A consumer that
// disconnects gives its unacked entries (on key_shared, its messages of
// them) back. A nack names messages: on key_shared only those go back; on
// the other types their entries go back whole, without what was
// acknowledged. redelivery_count is kept per message and counts the times
// that message was given back by its own nack or by a consumer leaving
// with it, not the times its entry was redelivered for a sibling's nack.
// Non-durable subscriptions (readers) keep no cursor.
//
// Seeking by time (Seek, ResetCursor, a reader's start_time) relies on
// publish times increasing strictly along a topic: ledgers are skipped by
// their recorded publish-time range and the entry is found by a binary
// search of bookie reads; offloaded ledgers go to the TimeFinder hook.
//
// # Object-store tier
//
// With EnableTiering (TierConfig), each topic offloads closed ledgers by its
// namespace's policy (age, bookie-resident bytes) or on TriggerOffload:
// record started, write and verify the segments (package tiering), record
// complete, set LedgerInfo.Offloaded, and after the deletion lag verify the
// objects again, delete the bookie copy (BookieDeleter) and record
// deleted; every step is a
// compare-and-swap on re-read metadata. Offload and retention of a topic
// are serialised (topicTier.mu). Catch-up reads of a ledger whose offload
// is complete go to the object store; seeks use tiering's TimeFinder. See
// offload.go, tier.go and docs/tiering.md.
//
// Consumed ledgers are deleted (metadata and bookies) once every durable
// subscription is past them and the namespace's retention has elapsed; a
// topic without durable subscriptions keeps nothing past retention, as in
// Pulsar. Topics are created on first produce or subscribe, as in Pulsar.
//
// LOCKORDER: Node.mu, then topic.mlMu, then topic.mu; producers and
// consumers use channels and atomics only.
package serving
