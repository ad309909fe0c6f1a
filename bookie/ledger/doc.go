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
// bookies (entries then have Qa copies, not Qw), retries the change every
// RetryInterval, and gives a failed bookie that is listed as live again its
// un-acked adds back without a metadata change (it is still in the ensemble).
// A bookie is failed by a timeout only if it has an add older than AddTimeout
// and answered no add for as long: a slow bookie is not a dead one. An add
// refused with TOO_MANY_IN_FLIGHT is resent on the next tick.
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
// not have, and CASes the ledger closed at the last entry found. Reads go to
// fenced bookies only (so a "no such entry" answer is final); they cover a
// window of entries in parallel, coalesced into range reads per bookie. Concurrent
// recoverers converge through the CAS. A writer that sees FENCED from a bookie,
// or an in-recovery/closed ledger on a CAS, is fenced: every pending and
// future add fails with ErrFenced, and no entry past the LAC it had reached is
// ever reported as acknowledged.
//
// # Re-replication
//
// Rereplicate copies a closed ledger off a bookie lost for good, fragment
// by fragment, to a bookie outside each fragment's ensemble (one that
// deleted the ledger refuses its entries, and is passed over), and records
// the replacements in one compare-and-swap; an Auditor finds the ledgers
// of bookies missing past a delay (rereplicate.go, audit.go). The
// Auditor's ledger check goes through every closed ledger periodically
// and copies back to a live bookie of a fragment the entries of its write
// sets it misses (it was down while they were written, with no spare to
// replace it), asking the bookie which entries it stores (check.go). Its
// garbage collection compares the ledgers each bookie stores
// (ListLedgers) with their metadata, and deletes from a bookie the copies
// of ledgers whose metadata is gone and, past a grace period, of closed
// ledgers that name the bookie no more and only registered bookies
// (collect.go): nothing else would ever delete them.
//
// # Limits and known gaps
//
//   - The LAC a bookie knows lags the writer's by one entry (it is
//     piggy-backed on the next add; there is no explicit-LAC call), so
//     ReadLAC/WaitLAC on an open ledger see the last entry only once another
//     follows. A closed ledger's LastEntry is exact.
//   - A recovery does not know the ledger's Bytes (entries carry no running
//     length): it keeps the stored value unless annotate sets it.
//   - A recovery does not change the ensemble: it needs, for every entry it
//     re-replicates, Qa live bookies of the entry's write set, and for the
//     fence (Qw−Qa)+1 live bookies of every write set. With Qa = 1, or with
//     Qw = Qa and an entry found on fewer than Qa bookies, a dead bookie
//     blocks the recovery until it returns (so does BookKeeper's fence).
//   - Read returns at most MaxReadEntries entries or MaxReadBytes bytes; the
//     caller asks again from the next entry.
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
