package bookie

import (
	"context"
	"fmt"
	"testing"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// listEntries asks c for the entries of ledger l in first..last until the
// answers cover the range (asking once at least), and answers them as
// "first-last" ranges.
func listEntries(t *testing.T, c bookiepb.BookieClient, l ids.LedgerID, first, last ids.EntryID) (string, error) {
	t.Helper()
	var out []string
	for from := first; ; {
		resp, err := c.ListEntries(context.Background(), &bookiepb.ListEntriesRequest{LedgerId: uint64(l), FirstEntry: int64(from), LastEntry: int64(last)})
		if err != nil {
			return "", errcode.FromError(err)
		}
		next := ids.EntryID(resp.NextEntry)
		if next <= from || next > last+1 {
			t.Fatalf("asked %d..%d, answered up to %d", from, last, next)
		}
		for _, r := range resp.Ranges {
			if ids.EntryID(r.FirstEntry) < from || r.LastEntry < r.FirstEntry || ids.EntryID(r.LastEntry) >= next {
				t.Fatalf("asked %d..%d, answered %d..%d up to %d", from, last, r.FirstEntry, r.LastEntry, next)
			}
			out = append(out, fmt.Sprintf("%d-%d", r.FirstEntry, r.LastEntry))
		}
		if from = next; from > last {
			return fmt.Sprint(out), nil
		}
	}
}

// TestListEntriesAnswersTheEntriesStoredExactlyAlsoAfterARestart: a
// bookie lists the entries of a ledger it stores, holes and far sparse ids
// included, over gRPC and in process, and the same after a restart (from
// its checkpoint and segment indexes, and from a full replay); an unknown
// ledger has none, a deleted one is LEDGER_NOT_FOUND, a bad range
// INVALID_ARGUMENT.
func TestListEntriesAnswersTheEntriesStoredExactlyAlsoAfterARestart(t *testing.T) {
	ctx := context.Background()
	b := openBookie(t, testConfig(t.TempDir()))
	stored := []ids.EntryID{12, 3_000_000} // the far one past what an answer looks at
	for e := range ids.EntryID(10) {
		stored = append(stored, e)
	}
	for e := ids.EntryID(14); e <= 20; e++ {
		stored = append(stored, e)
	}
	for _, e := range stored {
		mustAdd(t, b, 5, e, -1, 30)
	}
	mustAdd(t, b, 6, 0, -1, 30)
	if err := b.Delete(ctx, 6); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		l           ids.LedgerID
		first, last ids.EntryID
		want        string
		code        errcode.Code
	}{
		{5, 0, 4_000_000, "[0-9 12-12 14-20 3000000-3000000]", 0},
		{5, 5, 15, "[5-9 12-12 14-15]", 0},
		{5, 21, 2_999_999, "[]", 0},
		{7, 0, 100, "[]", 0}, // never seen: the bookie missed all of it
		{6, 0, 100, "", errcode.LedgerNotFound},
		{5, 9, 8, "", errcode.InvalidArgument},
		{5, -1, 8, "", errcode.InvalidArgument},
	}
	check := func(name string, c bookiepb.BookieClient) {
		t.Helper()
		for _, tc := range cases {
			got, err := listEntries(t, c, tc.l, tc.first, tc.last)
			if errcode.CodeOf(err) != tc.code || got != tc.want {
				t.Fatalf("%s: ledger %d %d..%d: %s %v, want %s (code %v)", name, tc.l, tc.first, tc.last, got, err, tc.want, tc.code)
			}
		}
	}
	checkEveryWay(t, b, check)
}

// checkEveryWay runs check against b over gRPC and in process, then over
// gRPC after a restart from its checkpoint and after one from a full
// replay of its journal.
func checkEveryWay(t *testing.T, b *Bookie, check func(name string, c bookiepb.BookieClient)) {
	t.Helper()
	c, _ := dial(t, serve(t, b))
	check("grpc", c)
	check("local", b.LocalClient())
	for _, replay := range []bool{false, true} {
		b = reopen(t, b, replay)
		c, _ := dial(t, serve(t, b))
		check(fmt.Sprintf("grpc after a restart (full replay %v)", replay), c)
	}
}
