package bookie

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

// TestAcknowledgedAddsSurvivePowerLoss emulates a power loss, which a
// SIGKILL cannot: the data directory is copied while adds stream in, and in
// the copy the bytes that were not yet covered by a completed fdatasync are
// torn (pages zeroed at random, the file cut at a random point). The copy
// must open, serve every add acknowledged before the copy began
// byte-identical, and report no LAC beyond the writer's. With seeds 3 and 4
// the bookie writes into recycled segments, full of a forgotten ledger's
// records, and torn pages may hold such records as well.
func TestAcknowledgedAddsSurvivePowerLoss(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			cfg := testConfig(t.TempDir())
			var stale []byte
			if seed >= 3 {
				fillFreeSegments(t, cfg)
				stale = oldRecords(t, cfg.DataDir)
			}
			b := openBookie(t, cfg)
			w := &crashWriter{seed: seed, ledger: ids.LedgerID(seed), acked: map[ids.EntryID]bool{}, lac: ids.NoEntry}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() { w.runInProcess(t, b, stop) })

			target := 100 + rng.IntN(500)
			for deadline := time.Now().Add(60 * time.Second); w.count() < target; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("only %d adds acknowledged", w.count())
				}
			}
			// Acks taken before the copy must survive; bytes the copy holds
			// past the durable offset read after it may be lost; records in
			// the copy were sent before the LAC read after it.
			acked, _ := w.snapshot()
			checkAckedWithinDurable(t, b, w.ledger, acked, b.durable.Load())
			copyDir := t.TempDir()
			copyDataDir(t, cfg.DataDir, copyDir)
			d := b.durable.Load()
			_, lacBound := w.snapshot()
			close(stop)
			wg.Wait()
			if stale != nil && counterValue(b.metrics.recycled) == 0 {
				t.Fatal("the bookie wrote into no recycled segment")
			}
			b.Close()

			tearUnsynced(t, filepath.Join(copyDir, "journal"), uint32(d>>32), int64(uint32(d)), rng, stale)
			// Segment indexes are written without fsync: any may be cut.
			xs, _ := filepath.Glob(filepath.Join(copyDir, "journal", "*.idx"))
			for _, x := range xs {
				if fi, err := os.Stat(x); err == nil && rng.IntN(2) == 0 {
					os.Truncate(x, rng.Int64N(fi.Size()+1))
				}
			}
			cfg.DataDir = copyDir
			r := openBookie(t, cfg)
			for e := range acked {
				got, err := r.Read(w.ledger, e)
				if err != nil {
					t.Fatalf("acknowledged entry %d lost in the power loss: %v", e, err)
				}
				if string(got.Payload) != string(w.payload(e)) {
					t.Fatalf("acknowledged entry %d differs after the power loss", e)
				}
			}
			info, err := r.ReadLAC(context.Background(), w.ledger, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if info.LAC > lacBound {
				t.Fatalf("LAC %d after power loss exceeds the writer's %d", info.LAC, lacBound)
			}
			// Only unsynced bytes were torn: that is a torn tail to cut, never
			// corruption.
			if c := counterValue(r.metrics.corruptions); c != 0 {
				t.Fatalf("%v corruptions reported after tearing only unsynced bytes", c)
			}
			t.Logf("acked %d before the copy; after: LAC %d (writer %d), last %d", len(acked), info.LAC, lacBound, info.Last)
		})
	}
}

func (w *crashWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *crashWriter) snapshot() (map[ids.EntryID]bool, ids.EntryID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[ids.EntryID]bool, len(w.acked))
	for e := range w.acked {
		m[e] = true
	}
	return m, w.lac
}

// runInProcess adds entries with up to 64 in flight until stop closes.
func (w *crashWriter) runInProcess(t *testing.T, b *Bookie, stop chan struct{}) {
	window := make(chan struct{}, 64)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for e := ids.EntryID(0); ; e++ {
		select {
		case <-stop:
			return
		case window <- struct{}{}:
		}
		inflight.Add(1)
		ent := Entry{Ledger: w.ledger, ID: e, LAC: w.currentLAC(), Payload: w.payload(e)}
		err := b.AddAsync(context.Background(), ent, func(err error) {
			if err == nil {
				w.ack(ent.ID)
			}
			<-window
			inflight.Done()
		})
		if err != nil {
			inflight.Done()
			return
		}
	}
}

// copyDataDir copies the journal's key, the checkpoints, the segment
// indexes, then the journal segments, as they are now (the page cache's
// view).
func copyDataDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(to, "journal"), 0o755); err != nil {
		t.Fatal(err)
	}
	ms, _ := filepath.Glob(filepath.Join(from, "checkpoint-*"))
	ms = append([]string{filepath.Join(from, "journal", keyFile)}, ms...)
	xs, _ := filepath.Glob(filepath.Join(from, "journal", "*.idx"))
	js, _ := filepath.Glob(filepath.Join(from, "journal", "*.log"))
	for _, m := range append(append(ms, xs...), js...) {
		data, err := os.ReadFile(m)
		if os.IsNotExist(err) {
			continue // reclaimed meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(from, m)
		if err := os.WriteFile(filepath.Join(to, rel), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// oldRecords returns the content of a free segment in dataDir: records of
// an earlier use of the file.
func oldRecords(t *testing.T, dataDir string) []byte {
	t.Helper()
	dir := filepath.Join(dataDir, "journal")
	free, err := journal.ListFree(dir)
	if err != nil || len(free) == 0 {
		t.Fatalf("no free segment (%v)", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, journal.FreeName(free[0])))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// tearUnsynced damages, in every segment at or after durableSeg, the bytes
// after the durable offset (all of a later segment): each 4 KiB page is
// zeroed with probability 1/3 or, when stale is given, set back to the
// bytes stale holds there with probability 1/3 (what a recycled segment
// held before), then the file is cut at a random point.
func tearUnsynced(t *testing.T, dir string, durableSeg uint32, durableOff int64, rng *rand.Rand, stale []byte) {
	t.Helper()
	segs, err := journal.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range segs {
		if id < durableSeg {
			continue
		}
		from := int64(0)
		if id == durableSeg {
			from = durableOff
		}
		p := filepath.Join(dir, journal.Name(id))
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(data)) <= from {
			continue
		}
		for page := from &^ 4095; page < int64(len(data)); page += 4096 {
			if page < from {
				continue
			}
			p := data[page:min(page+4096, int64(len(data)))]
			switch rng.IntN(3) {
			case 0:
				clear(p)
			case 1:
				if page < int64(len(stale)) {
					copy(p, stale[page:])
				}
			}
		}
		cut := from + rng.Int64N(int64(len(data))-from+1)
		if err := os.WriteFile(p, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkAckedWithinDurable: every acknowledged entry ends within the journal
// prefix a completed fdatasync covered (durable, read after the acks).
func checkAckedWithinDurable(t *testing.T, b *Bookie, l ids.LedgerID, acked map[ids.EntryID]bool, durable uint64) {
	t.Helper()
	seg, off := uint32(durable>>32), int64(uint32(durable))
	for e := range acked {
		loc, err := b.lookup(l, e)
		if err != nil {
			t.Fatalf("acknowledged entry %d not indexed: %v", e, err)
		}
		if loc.File > seg || (loc.File == seg && int64(loc.Off)+int64(loc.Len) > off) {
			t.Fatalf("entry %d acknowledged at %s@%d+%d, past the durable position %s@%d",
				e, journal.Name(loc.File), loc.Off, loc.Len, journal.Name(seg), off)
		}
	}
}
