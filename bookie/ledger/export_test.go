package ledger

import "testing"

// SetMaxDeletionsPerRound bounds the marked ledgers an audit round tries
// to n until the test ends.
func SetMaxDeletionsPerRound(t testing.TB, n int) {
	old := maxDeletionsPerRound
	maxDeletionsPerRound = n
	t.Cleanup(func() { maxDeletionsPerRound = old })
}
