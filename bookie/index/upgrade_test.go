package index_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-mq/strata/bookie"
	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

func upgradePayload(l ids.LedgerID, e ids.EntryID) []byte {
	return bytes.Repeat([]byte{byte(l), byte(e)}, 20<<10)
}

// A data directory as bookies wrote it before segment indexes existed (a
// first-format checkpoint holding every entry location, no segment index
// files) opens with a bookie of today: every entry reads back
// byte-identical, fences and deletes hold, and the segments get their
// indexes.
func TestBookieOpensADataDirectoryFromBeforeSegmentIndexes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := bookie.Config{DataDir: dir, JournalFileBytes: 1 << 20, MaxEntryBytes: 256 << 10, CompactLiveFraction: -1}
	b, err := bookie.Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for l := ids.LedgerID(1); l <= 3; l++ {
		for e := range ids.EntryID(40) { // 1.6 MiB a ledger: several segments
			if err := b.Add(ctx, bookie.Entry{Ledger: l, ID: e, LAC: e - 1, Payload: upgradePayload(l, e)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, err := b.Fence(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Rewrite the directory in the old layout: the checkpoint with the
	// entry locations of every indexed segment, and no index files.
	jdir := filepath.Join(dir, "journal")
	cps, _, err := index.Load(dir)
	if err != nil || len(cps) == 0 {
		t.Fatalf("checkpoint: %v", err)
	}
	cp := cps[0]
	segs, err := journal.List(jdir)
	if err != nil {
		t.Fatal(err)
	}
	indexed := 0
	for _, id := range segs {
		fi, err := os.Stat(filepath.Join(jdir, journal.Name(id)))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := index.LoadSegment(jdir, id, fi.Size())
		if err != nil {
			continue // the newest segment has none: the old bookie scanned it too
		}
		for _, r := range recs {
			cp.Table.Apply(r)
		}
		indexed++
		if err := index.RemoveSegment(jdir, id); err != nil {
			t.Fatal(err)
		}
	}
	if indexed < 2 {
		t.Fatalf("%d indexed segments of %d: want several", indexed, len(segs))
	}
	for _, slot := range []string{"checkpoint-0", "checkpoint-1"} {
		os.Remove(filepath.Join(dir, slot))
	}
	if err := index.Save(dir, cp.Seq, index.EncodeV1(cp.Seq, cp.Pos, cp.Table)); err != nil {
		t.Fatal(err)
	}
	if old, damaged, err := index.Load(dir); err != nil || damaged != 0 || len(old) != 1 || old[0].Table.Entries() == 0 {
		t.Fatalf("the old-layout checkpoint does not load as one: %v, %d damaged", err, damaged)
	}

	b, err = bookie.Open(cfg, nil)
	if err != nil {
		t.Fatalf("open the old layout: %v", err)
	}
	for l := ids.LedgerID(1); l <= 2; l++ {
		for e := range ids.EntryID(40) {
			got, err := b.Read(l, e)
			if err != nil || !bytes.Equal(got.Payload, upgradePayload(l, e)) {
				t.Fatalf("read %d:%d after the upgrade: %v", l, e, err)
			}
		}
	}
	if err := b.Add(ctx, bookie.Entry{Ledger: 2, ID: 40, LAC: 39, Payload: []byte("late")}); !errors.Is(err, bookie.ErrFenced) {
		t.Fatalf("add to the fenced ledger after the upgrade: %v", err)
	}
	if _, err := b.Read(3, 0); !errors.Is(err, bookie.ErrLedgerNotFound) {
		t.Fatalf("read of the deleted ledger after the upgrade: %v", err)
	}
	if err := b.Close(); err != nil { // writes the indexes of the scanned segments
		t.Fatal(err)
	}
	idx, _ := filepath.Glob(filepath.Join(jdir, "*.idx"))
	if len(idx) < indexed {
		t.Fatalf("%d segment indexes after the upgrade, want at least %d", len(idx), indexed)
	}
	cps, _, err = index.Load(dir)
	if err != nil || len(cps) == 0 || cps[0].Table.Entries() != 0 {
		t.Fatalf("checkpoint after the upgrade: %v (want the current format, no entries)", err)
	}
}
