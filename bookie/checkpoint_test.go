package bookie

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strata-mq/strata/internal/ids"
)

func histogramCount(h prometheus.Histogram) uint64 {
	var m dto.Metric
	h.Write(&m)
	return m.GetHistogram().GetSampleCount()
}

// Each checkpoint costs an fsync on the journal's disk, so segment
// rotations, which kick one, are coalesced to at most one checkpoint per
// CheckpointInterval/10.
func TestRotationsKickAtMostOneCheckpointPerTenthOfTheInterval(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.JournalFileBytes = 512 << 10
	cfg.CheckpointInterval = 2 * time.Second // kicks: one per 200 ms at most
	b := openBookie(t, cfg)
	before := histogramCount(b.metrics.checkpoint)
	startSeg := b.active.ID
	start := time.Now()
	var wg sync.WaitGroup
	for e := range ids.EntryID(1500) { // 1500 × 10 KiB: ~30 rotations
		wg.Add(1)
		err := b.AddAsync(context.Background(), Entry{Ledger: 7, ID: e, LAC: e - 1, Payload: payload(7, e, 10<<10)}, func(err error) {
			if err != nil {
				t.Errorf("add %d: %v", e, err)
			}
			wg.Done()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	rotations := b.active.ID - startSeg
	if rotations < 10 {
		t.Fatalf("only %d rotations: the test needs many", rotations)
	}
	got := histogramCount(b.metrics.checkpoint) - before
	allowed := uint64(elapsed/(cfg.CheckpointInterval/10)) + 2
	if got > allowed {
		t.Fatalf("%d checkpoints for %d rotations in %v: want at most %d", got, rotations, elapsed, allowed)
	}
}
