// Package ledger is the BookKeeper-style client of Strata's bookies: the
// ledger writer, the reader, and the recovery (fencing) of a ledger whose
// writer went away.
//
// It owns the client side of the bookie protocol (bookie/bookiepb): a pool of
// gRPC connections keyed by bookie address, one Add stream per bookie per
// writer, and the quorum logic. It does not own ledger metadata (package
// metadata keeps it in etcd, reached through metadata.LedgerStore) nor the
// bookies' storage (package bookie). It knows nothing about topics.
//
// # Striping and quorums
//
// A ledger has an ensemble of E bookies, a write quorum Qw and an ack quorum
// Qa (E ≥ Qw ≥ Qa ≥ 1). Its entries are split in fragments; entry e of a
// fragment with bookies B goes to its write set B[(e+i)%E] for i in [0, Qw).
// An add succeeds once Qa bookies of its write set acknowledged it (each
// bookie acknowledges only after its journal fsync) and every lower entry
// succeeded: completions are delivered in entry order and the LAC (last add
// confirmed) is the highest entry acknowledged with all before it. Every add
// carries the writer's LAC of the moment (piggy-backed), so bookies learn it.
//
// # Ensemble change
//
// When a bookie fails (an add error other than fenced, a broken stream, an
// add timeout), the writer stops confirming, replaces the failed bookie by one
// not in the ensemble and records a new fragment starting at LAC+1 (or
// replaces the last fragment if it started there) with a compare-and-swap of
// the ledger metadata. Only after the CAS succeeded are the unconfirmed
// entries sent to the replacement; acks of replaced bookies no longer count.
// When no replacement exists the writer keeps writing to the remaining
// bookies as long as every write set can still reach Qa, and retries later.
//
// # Fencing and recovery
//
// A new owner recovers the ledger: it CASes the metadata to in-recovery (so
// the old writer's next ensemble change fails), fences the ledger on at least
// (Qw−Qa)+1 bookies of every write set of the last fragment (after which no
// write set can give Qa acks to the old writer), reads forward from the
// highest LAC the fenced bookies report, re-replicates every entry it finds
// with recovery adds until Qa (ideally Qw) bookies of its write set hold it,
// stops at the first entry that (Qw−Qa)+1 fenced bookies of its write set do
// not have, and CASes the ledger closed at the last entry found. Concurrent
// recoverers converge through the CAS. A writer that sees FENCED from a bookie,
// or an in-recovery/closed ledger on a CAS, is fenced: every pending and
// future add fails with ErrFenced, and no entry past the LAC it had reached is
// ever reported as acknowledged.
//
// # Structure
//
// The writer's and the recovery's logic are deterministic state machines
// (writer_state.go, recovery_state.go) with no clock, randomness or I/O: they
// take inputs (appends, add/fence/read responses, bookie failures, metadata
// results, ticks carrying the time) and return outputs (adds, fences, reads,
// metadata operations, completions). Thin drivers (writer.go, recover.go) do
// the I/O over gRPC and etcd; the tests drive the same machines under a seeded
// simulation of crashing bookies and a lossy network.
package ledger
