package ledger

import "testing"

// SetMaxDeletionsPerRound bounds the marked ledgers an audit round tries
// to n until the test ends.
func SetMaxDeletionsPerRound(t testing.TB, n int) {
	old := maxDeletionsPerRound
	maxDeletionsPerRound = n
	t.Cleanup(func() { maxDeletionsPerRound = old })
}

// SetMaxChecksPerRound bounds the ledgers an audit round checks to n
// until the test ends.
func SetMaxChecksPerRound(t testing.TB, n int) {
	old := maxChecksPerRound
	maxChecksPerRound = n
	t.Cleanup(func() { maxChecksPerRound = old })
}

// ErrOnNoBookie is a read's answer when every bookie of the write set said
// it has no such entry.
var ErrOnNoBookie = errOnNoBookie

// SetMaxCollectionsPerRound bounds the copies a round of the garbage
// collection reads again to n until the test ends.
func SetMaxCollectionsPerRound(t testing.TB, n int) {
	old := maxCollectionsPerRound
	maxCollectionsPerRound = n
	t.Cleanup(func() { maxCollectionsPerRound = old })
}

// SetMaxOverClocks bounds the over-replicated copies the garbage
// collection times at once to n until the test ends.
func SetMaxOverClocks(t testing.TB, n int) {
	old := maxOverClocks
	maxOverClocks = n
	t.Cleanup(func() { maxOverClocks = old })
}
