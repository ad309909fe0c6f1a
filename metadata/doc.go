// Package metadata owns every piece of Strata's cluster state and keeps it in
// etcd: registered bookies and serving nodes, ledger ids and ledger metadata,
// each topic's ledger list, cursors, topic ownership and namespace policies.
// It does not decide anything about them: the serving tier, the ledger
// writer and tiering do, and use this package to read and to compare-and-swap.
//
// # Store
//
// Store is the etcd-backed implementation (go.etcd.io/etcd/client/v3). Open
// takes a Config (endpoints of an external etcd in cluster mode, or of an
// Embedded one in standalone mode and tests). Records are JSON, at most
// MaxRecordBytes each; the key layout is documented in keys.go, the only
// file that builds keys.
//
// # Invariants
//
//   - Every update is a compare-and-swap on the key's revision: a record's
//     Version is its etcd mod revision, Version 0 means "must not exist", and
//     a write that lost to a concurrent one fails with ErrBadVersion and
//     changes nothing; the caller re-reads and decides again.
//   - Liveness records (nodes, bookies, topic ownership) are attached to a
//     Session's lease and vanish when the session is closed or its lease
//     expires. AcquireOwnership creates the key only if it is absent, so a
//     topic has at most one owner at a time.
//   - Ledger ids are never handed out twice, across Stores and restarts: a
//     Store reserves a range of Config.LedgerIDBatch ids with one CAS on a
//     counter and hands them out from memory; the unused rest of a range is
//     skipped. NewLedgerIDAfter hands out one above a given id (a topic's
//     newest ledger), reserving a new range when this Store's is below it,
//     so that a topic's ledger ids, and message ids, grow across owners.
//   - Bad input (names, quorums, policies, oversize records) gets a typed
//     errcode error and writes nothing. Failing to reach etcd within
//     Config.RequestTimeout is an errcode.Unavailable error (retriable);
//     running out of the caller's own deadline is errcode.Timeout. Requests
//     slower than a second are logged as warnings.
//   - Every transaction stays within etcd's default limit of 128
//     operations (hence MaxPartitions; AddPartitions refuses an increase
//     whose partitions and cursors would not fit one).
//
// # Errors
//
// ErrBadVersion (errcode.BadVersion), ErrNotFound, ErrTopicExists,
// ErrTopicNotFound, ErrLedgerExists, ErrSessionLost, ErrRecordTooLarge and
// ErrInvalidPolicy are returned as themselves or wrapped with %w: test with
// errors.Is.
//
// The metatest package starts embedded etcd servers and Stores for the
// tests of other packages.
package metadata
