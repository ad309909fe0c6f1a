package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/loadtest/chaos"
	"github.com/strata-mq/strata/metadata"
)

// TestARestartedLostBookiesOrphanedLedgersAreDeletedAndItsSpaceReclaimed:
// on a real cluster of four bookies (E=Qw=3, Qa=2), a bookie killed for
// longer than --lost-bookie-recovery-delay has its ledgers copied to the
// spare, and a topic of its is deleted meanwhile, without it. Restarted
// on its data directory, it still held every one of those ledgers, which
// nothing named any more, for good. The auditing node's garbage
// collection (--ledger-gc-interval, --overreplicated-ledger-grace) now
// deletes them from it: it lists none of them, the journal segments
// that held them are removed, and every acknowledged message of the
// topic that remains is consumed exactly once.
func TestARestartedLostBookiesOrphanedLedgersAreDeletedAndItsSpaceReclaimed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	ctx := testContext(t, 4*time.Minute)
	dirs := map[string]string{}
	cluster, _, c := startProcessCluster(t, ctx, chaos.ClusterConfig{Bookies: 4,
		// Small segments, none kept for reuse: the deleted topic's entries
		// fill several, each removed once nothing in it lives.
		BookieArgs: func(a chaos.NodeAddrs) []string {
			dirs[a.Addr] = a.DataDir
			return append(chaos.DefaultBookieArgs(a), "--max-entry-bytes", "262144", "--group-max-bytes", "131072",
				"--journal-file-bytes", "1048576", "--journal-recycle-segments", "-1")
		},
		ServeArgs: func(a chaos.NodeAddrs, cc chaos.ClusterConfig) []string {
			return append(chaos.DefaultServeArgs(a, cc), "--lost-bookie-recovery-delay", "2s",
				"--ledger-gc-interval", "1s", "--overreplicated-ledger-grace", "3s")
		}})
	const kept, deleted = "public/default/gc-kept", "public/default/gc-deleted"
	var acked []int
	for range 2 {
		sendNumbered(t, ctx, c, kept, "kept", 100, &acked)
		if err := c.Admin().UnloadTopic(ctx, kept); err != nil { // closes its ledger
			t.Fatal(err)
		}
	}
	p, err := c.NewProducer(ctx, deleted)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 { // about 5 MiB on each bookie of its ensemble
		if _, err := p.Send(ctx, &client.ProducerMessage{Payload: bytes.Repeat([]byte{byte(i)}, 16<<10)}); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	if err := c.Admin().UnloadTopic(ctx, deleted); err != nil {
		t.Fatal(err)
	}

	store, err := metadata.Open(ctx, metadata.Config{Endpoints: cluster.EtcdEndpoints(), Prefix: "/strata"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ledgersOf := func(topics ...string) []*metadata.Ledger { return ledgersOfTopics(t, ctx, store, topics...) }
	before := ledgersOf(kept, deleted)
	var orphans []uint64 // once the bookie is lost and back
	for _, l := range before {
		orphans = append(orphans, uint64(l.ID))
	}
	// A bookie that holds the deleted topic's ledger and a kept one: two
	// ensembles of three out of four bookies share two.
	d := slices.IndexFunc(before, func(l *metadata.Ledger) bool { return l.Topic == deleted })
	k := slices.IndexFunc(before, func(l *metadata.Ledger) bool { return l.Topic == kept })
	lost := slices.DeleteFunc(ledgerBookies(before[d]), func(b string) bool { return !slices.Contains(ledgerBookies(before[k]), b) })[0]
	target := cluster.Targets()[cluster.BookieTarget(lost)]
	if err := target.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, ctx, "no ledger naming the lost bookie", func() bool {
		return !slices.ContainsFunc(ledgersOf(kept, deleted), func(l *metadata.Ledger) bool { return slices.Contains(ledgerBookies(l), lost) })
	})
	if err := c.Admin().DeleteTopic(ctx, deleted, true); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, ctx, "the deleted topic's ledgers gone from the metadata", func() bool { return len(ledgersOf(deleted)) == 0 })
	journal := filepath.Join(dirs[lost], "journal")
	segments := journalSegments(t, journal)
	if len(segments) < 5 {
		t.Fatalf("the lost bookie's journal has segments %v, want the deleted topic's entries over several", segments)
	}

	if err := target.Restart(); err != nil {
		t.Fatal(err)
	}
	// Its copy of a kept ledger is deleted only past the grace period.
	if held := bookieLedgers(t, ctx, lost); !slices.Contains(held, uint64(before[k].ID)) {
		t.Fatalf("the restarted bookie holds ledgers %v, want its copy of %d, which nothing names", held, before[k].ID)
	}
	pollUntil(t, ctx, "the restarted bookie to hold none of the ledgers copied off it or deleted", func() bool {
		return !slices.ContainsFunc(bookieLedgers(t, ctx, lost), func(id uint64) bool { return slices.Contains(orphans, id) })
	})
	// The newest segment before the restart may be an empty spare, which
	// the restart writes into.
	old := segments[:len(segments)-1]
	pollUntil(t, ctx, "the journal segments that held them removed", func() bool {
		now := journalSegments(t, journal)
		return !slices.ContainsFunc(old, func(s string) bool { return slices.Contains(now, s) })
	})
	checkConsumedExactlyOnce(t, ctx, c, kept, acked)
}

// journalSegments answers the names of the journal segments in dir,
// ascending.
func journalSegments(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			out = append(out, e.Name())
		}
	}
	return out
}

// bookieLedgers answers the ledgers the bookie at addr stores, asking
// page after page.
func bookieLedgers(t *testing.T, ctx context.Context, addr string) []uint64 {
	t.Helper()
	bc := dialBookie(t, addr)
	var out []uint64
	for first := uint64(0); ; {
		resp, err := bc.ListLedgers(ctx, &bookiepb.ListLedgersRequest{FirstLedger: first}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetLedgerIds()...)
		if first = resp.GetNextLedger(); first == 0 {
			return out
		}
	}
}
