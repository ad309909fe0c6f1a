package bookie

import (
	"context"
	"maps"
	"slices"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/ids"
)

// listLedgers pages through c's ledgers from 0 up and answers them,
// checking that each answer is ascending, within its bound, and says
// where the next one starts.
func listLedgers(t *testing.T, c bookiepb.BookieClient) []ids.LedgerID {
	t.Helper()
	var out []ids.LedgerID
	for first := uint64(0); ; {
		resp, err := c.ListLedgers(context.Background(), &bookiepb.ListLedgersRequest{FirstLedger: first})
		if err != nil {
			t.Fatal(err)
		}
		got := resp.GetLedgerIds()
		if len(got) > listLedgerIDs || !slices.IsSorted(got) || (len(got) > 0 && got[0] < first) {
			t.Fatalf("asked from %d: %d ids, from %v, sorted %v", first, len(got), got[:min(len(got), 1)], slices.IsSorted(got))
		}
		for _, l := range got {
			out = append(out, ids.LedgerID(l))
		}
		next := resp.GetNextLedger()
		if next == 0 {
			return out
		}
		if len(got) == 0 || next != got[len(got)-1]+1 {
			t.Fatalf("asked from %d: %d ids, then next %d", first, len(got), next)
		}
		first = next
	}
}

// TestListLedgersAnswersTheLedgersStoredAndNotDeletedAlsoAfterARestart:
// a bookie lists every ledger it holds entries of, or a fence alone, and
// not those it deleted, over gRPC (more than one answer's worth, so the
// caller pages) and in process, and the same after a restart from its
// checkpoint and from a full replay.
func TestListLedgersAnswersTheLedgersStoredAndNotDeletedAlsoAfterARestart(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t.TempDir())
	cfg.UnsafeNoFsync = true // thousands of fences: what is listed, not how durable
	b := openBookie(t, cfg)
	stored := map[ids.LedgerID]bool{}
	for l := ids.LedgerID(1); l <= 4; l++ {
		mustAdd(t, b, l*1000, 0, -1, 30)
		stored[l*1000] = true
	}
	var g errgroup.Group
	g.SetLimit(16)
	for l := range ids.LedgerID(listLedgerIDs + 100) {
		g.Go(func() error { _, _, err := b.Fence(ctx, 10_001+l); return err })
		stored[10_001+l] = true
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, l := range []ids.LedgerID{2000, 10_001} {
		if err := b.Delete(ctx, l); err != nil {
			t.Fatal(err)
		}
		delete(stored, l)
	}
	want := slices.Sorted(maps.Keys(stored))
	check := func(name string, c bookiepb.BookieClient) {
		t.Helper()
		if got := listLedgers(t, c); !slices.Equal(got, want) {
			t.Fatalf("%s: %d ledgers listed, want %d (first %v, want %v)", name, len(got), len(want), got[:min(5, len(got))], want[:5])
		}
	}
	checkEveryWay(t, b, check)
}
