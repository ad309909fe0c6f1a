package ledger

import "testing"

// setUntilCleanup sets *p to v until the test ends.
func setUntilCleanup[T any](t testing.TB, p *T, v T) {
	old := *p
	*p = v
	t.Cleanup(func() { *p = old })
}

// SetMaxDeletionsPerRound bounds the marked ledgers an audit round tries
// to n until the test ends.
func SetMaxDeletionsPerRound(t testing.TB, n int) { setUntilCleanup(t, &maxDeletionsPerRound, n) }

// SetMaxChecksPerRound bounds the ledgers an audit round checks to n
// until the test ends.
func SetMaxChecksPerRound(t testing.TB, n int) { setUntilCleanup(t, &maxChecksPerRound, n) }

// ErrOnNoBookie is a read's answer when every bookie of the write set said
// it has no such entry.
var ErrOnNoBookie = errOnNoBookie

// SetMaxCollectionsPerRound bounds the copies a round of the garbage
// collection reads again to n until the test ends.
func SetMaxCollectionsPerRound(t testing.TB, n int) { setUntilCleanup(t, &maxCollectionsPerRound, n) }

// SetMaxOverClocks bounds the over-replicated copies the garbage
// collection times at once to n until the test ends.
func SetMaxOverClocks(t testing.TB, n int) { setUntilCleanup(t, &maxOverClocks, n) }
