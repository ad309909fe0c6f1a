package ledger

import (
	"fmt"
	"testing"

	"github.com/strata-mq/strata/internal/ids"
)

func TestMissingEntriesAreThoseOfTheWriteSetsNotHeld(t *testing.T) {
	for _, tc := range []struct {
		n, qw, k    int
		first, last ids.EntryID
		held        []span
		want        string
	}{
		{3, 3, 1, 0, 9, []span{{0, 9}}, "[]"},
		{3, 3, 1, 0, 9, nil, "[{0 9}]"},
		{3, 3, 0, 5, 20, []span{{0, 7}, {10, 12}, {19, 30}}, "[{8 9} {13 18}]"},
		{3, 3, 0, 5, 20, []span{{9, 9}}, "[{5 8} {10 20}]"},
		// E=3 Qw=2: bookie 0 holds e%3 in {0, 2}, bookie 1 e%3 in {0, 1}.
		{3, 2, 0, 0, 8, nil, "[{0 0} {2 3} {5 6} {8 8}]"},
		{3, 2, 1, 0, 8, nil, "[{0 1} {3 4} {6 7}]"},
		{3, 2, 0, 0, 8, []span{{0, 0}, {2, 3}, {5, 6}}, "[{8 8}]"},
		{3, 2, 0, 0, 8, []span{{0, 8}}, "[]"}, // holding more is no harm
		{3, 1, 2, 0, 8, []span{{5, 5}}, "[{2 2} {8 8}]"},
		{1, 1, 0, 0, 3, []span{{1, 2}}, "[{0 0} {3 3}]"},
	} {
		got := fmt.Sprint(missingEntries(tc.n, tc.qw, tc.k, tc.first, tc.last, tc.held))
		if got != tc.want {
			t.Errorf("E=%d Qw=%d bookie %d, %d..%d holding %v: missing %s, want %s", tc.n, tc.qw, tc.k, tc.first, tc.last, tc.held, got, tc.want)
		}
	}
}
