package bookie

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/hiccup"
	"github.com/strata-mq/strata/internal/hrtimer"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/internal/rpcpool"
)

// Benchmarks (make bench): the raw disk first, then adds through the real
// gRPC service on loopback with fsync on, reported against the raw figures
// measured in the same run on the same disk. STRATA_BENCH_DIR picks the disk
// (default: the system temp dir).

// The bookie runs inside the strata binary, which installs this pool and
// raises GOMAXPROCS (RaiseProcs); the tests of this package run so too.
func init() {
	rpcpool.InstallDefault()
	RaiseProcs()
}

func benchDir(b *testing.B) string {
	dir, err := os.MkdirTemp(os.Getenv("STRATA_BENCH_DIR"), "bookie-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// rawWriteSync writes size-byte blocks sequentially, each followed by
// fdatasync, for d, into a new segment file (journal.Create), written with
// zeros beforehand if zeros is set (as the journal's segments are while it
// is not bandwidth-bound), else only preallocated. It returns the rate, the
// bandwidth and the latency of each write+fdatasync.
func rawWriteSync(b *testing.B, size int, d time.Duration, zeros bool) (syncsPerSec, bytesPerSec float64, lat *hdrhistogram.Histogram) {
	const fileBytes = 1 << 30
	seg, err := journal.Create(benchDir(b), 1, fileBytes, zeros)
	if err != nil {
		b.Fatal(err)
	}
	defer seg.Close()
	lat = hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	buf := make([]byte, size)
	var off int64
	n := 0
	start := time.Now()
	for time.Since(start) < d && off+int64(size) <= fileBytes {
		t := time.Now()
		if err := seg.Append(buf); err != nil { // as the journal writes
			b.Fatal(err)
		}
		if _, err := seg.Sync(); err != nil {
			b.Fatal(err)
		}
		lat.RecordValue(time.Since(t).Microseconds())
		off += int64(size)
		n++
	}
	secs := time.Since(start).Seconds()
	return float64(n) / secs, float64(n*size) / secs, lat
}

// raw holds the disk's figures, measured once per run before the adds:
// 4 KiB write+fdatasync per second and their latency, and the bytes per
// second of 1 MiB write+fdatasync.
var raw struct {
	once      sync.Once
	syncRate  float64
	syncLat   *hdrhistogram.Histogram
	bandwidth float64
}

func rawBaseline(b *testing.B) {
	raw.once.Do(func() {
		raw.syncRate, _, raw.syncLat = rawWriteSync(b, 4<<10, 2*time.Second, true)
		_, raw.bandwidth, _ = rawWriteSync(b, 1<<20, 2*time.Second, true)
		fmt.Printf("raw disk: 4KiB write+fdatasync %.0f/s (p50 %d µs, p99 %d µs, p99.9 %d µs); 1MiB write+fdatasync %.1f MB/s\n",
			raw.syncRate, raw.syncLat.ValueAtQuantile(50), raw.syncLat.ValueAtQuantile(99), raw.syncLat.ValueAtQuantile(99.9), raw.bandwidth/1e6)
		// Into space only preallocated, as journal segments were before
		// they got zeros (journal.Create says why): what that choice is
		// judged by, in the same run.
		rate, _, lat := rawWriteSync(b, 4<<10, 2*time.Second, false)
		fmt.Printf("raw disk, fallocated-only space: 4KiB write+fdatasync %.0f/s (p50 %d µs, p99 %d µs, p99.9 %d µs)\n",
			rate, lat.ValueAtQuantile(50), lat.ValueAtQuantile(99), lat.ValueAtQuantile(99.9))
	})
}

// addLoad runs b.N adds of size bytes through one Add stream with inFlight
// adds outstanding and records each add's latency.
func addLoad(b *testing.B, c bookiepb.BookieClient, ledger uint64, size, inFlight int) *hdrhistogram.Histogram {
	window := make(chan struct{}, inFlight)
	return runAdds(b, c, oneLedger(ledger), size,
		func(int) time.Time { window <- struct{}{}; return time.Now() },
		func() { <-window })
}

// pacedLoad sends b.N adds at rate per second on one stream and records
// each add's latency from its scheduled send time, or from when it was sent
// if that was earlier (the sender runs up to one sleep step ahead). An add
// sent late still counts from its schedule: the wait a stalled sender
// imposes is latency too (coordinated omission).
//
// The sender sleeps on an hrtimer in steps of 200 µs. It slept on the
// runtime's timers, in 1 ms steps, before 2026-11-22 22:45 UTC: those wake a
// busy process up to a millisecond late (internal/hrtimer), and that
// lateness, the load generator's own, was counted in every add of the tick.
func pacedLoad(b *testing.B, c bookiepb.BookieClient, ledger uint64, size int, rate float64) *hdrhistogram.Histogram {
	step := 200 * time.Microsecond
	sleep := func(d time.Duration) { time.Sleep(d) }
	if hr, err := hrtimer.New(); err == nil {
		defer hr.Close()
		sleep = func(d time.Duration) {
			hr.Reset(d)
			if err := hr.Wait(); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		step = time.Millisecond
	}
	var start time.Time
	return runAdds(b, c, oneLedger(ledger), size, func(i int) time.Time {
		if i == 0 {
			start = time.Now()
		}
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(due); d > step {
			sleep(d)
		}
		// Counting from a due time still ahead would make a fast answer
		// negative, and dropped by the histogram: only the slow ones of
		// each step would be counted.
		if now := time.Now(); now.Before(due) {
			return now
		}
		return due
	}, func() {})
}

// oneLedger sends every add to ledger, entry ids from 0.
func oneLedger(ledger uint64) func(int) (uint64, int64) {
	return func(i int) (uint64, int64) { return ledger, int64(i) }
}

// runAdds sends b.N adds of size bytes on one Add stream, add i to the
// ledger and entry target(i) says. before(i) runs before add i is sent and
// returns the time its latency counts from; answered runs once per answer.
// It returns the adds' latencies.
func runAdds(b *testing.B, c bookiepb.BookieClient, target func(i int) (uint64, int64), size int, before func(i int) time.Time, answered func()) *hdrhistogram.Histogram {
	st, err := c.Add(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	hist := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	sent := make([]time.Time, b.N)
	var mu sync.Mutex
	done := make(chan error, 1)
	go func() {
		for range b.N {
			resp, err := st.Recv()
			if err != nil || resp.ErrorCode != 0 {
				done <- fmt.Errorf("add: %v %v", err, resp)
				return
			}
			mu.Lock()
			t := sent[resp.RequestId]
			mu.Unlock()
			hist.RecordValue(time.Since(t).Microseconds())
			answered()
		}
		done <- nil
	}()
	p := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		t := before(i)
		mu.Lock()
		sent[i] = t
		mu.Unlock()
		ledger, entry := target(i)
		if err := st.Send(&bookiepb.AddRequest{RequestId: uint64(i), LedgerId: ledger, EntryId: entry, Lac: entry - 1, Payload: p}); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	st.CloseSend()
	return hist
}

func reportLatency(b *testing.B, h *hdrhistogram.Histogram) {
	b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-µs")
	b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-µs")
	b.ReportMetric(float64(h.ValueAtQuantile(99.9)), "p99.9-µs")
}

// syncs records the bookie's journal fdatasync latencies.
var syncs struct {
	sync.Mutex
	h *hdrhistogram.Histogram
}

var maxAddRate sync.Map // size → adds/s at 256 in flight

func BenchmarkAdd(b *testing.B) {
	rawBaseline(b)
	// The journal's own fdatasync latencies, read by the half-rate run.
	syncs.h = hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	bk, err := open(Config{DataDir: benchDir(b)}, nil, hooks{synced: func(d time.Duration) {
		syncs.Lock()
		syncs.h.RecordValue(d.Microseconds())
		syncs.Unlock()
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer bk.Close()
	c, _ := dial(b, serve(b, bk))
	ledger := uint64(0)
	// run measures adds of size bytes with inFlight outstanding; the rate
	// of the gRPC run at 256 in flight is the max the half-rate runs use.
	run := func(name string, c bookiepb.BookieClient, size, inFlight int, isMax bool) {
		b.Run(name, func(b *testing.B) {
			ledger++
			// The disk's bandwidth drifts within a minute of sustained
			// writing (docs/bookie.md), so large adds are compared with
			// the raw bandwidth measured just before and just after
			// them, not only with the baseline taken at the start.
			bandwidth := raw.bandwidth
			var before float64
			if size >= 64<<10 {
				_, before, _ = rawWriteSync(b, 1<<20, time.Second, true)
			}
			cpu0 := cpuTime(b)
			h := addLoad(b, c, ledger, size, inFlight)
			reportCPUPerGB(b, cpuTime(b)-cpu0, int64(b.N)*int64(size))
			rate := float64(b.N) / b.Elapsed().Seconds()
			if size >= 64<<10 {
				_, after, _ := rawWriteSync(b, 1<<20, time.Second, true)
				bandwidth = (before + after) / 2
				b.ReportMetric(bandwidth/1e6, "raw-MB/s-around")
				b.ReportMetric(100*rate*float64(size)/raw.bandwidth, "%-raw-bandwidth-at-start")
			}
			b.ReportMetric(rate, "adds/s")
			reportLatency(b, h)
			b.ReportMetric(rate/raw.syncRate, "x-raw-fsync-rate")
			b.ReportMetric(100*rate*float64(size)/bandwidth, "%-raw-bandwidth")
			if isMax {
				maxAddRate.Store(size, rate) // the last of b.N's rounds stays
			}
		})
	}
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, inFlight := range []int{1, 16, 256} {
			run(fmt.Sprintf("size=%dKiB/inflight=%d", size>>10, inFlight), c, size, inFlight, inFlight == 256)
		}
	}
	// Large adds through bk.LocalClient (the in-process path strata
	// standalone uses), without gRPC's copies and goroutines on the same
	// two cores: how much of the raw bandwidth the bookie itself reaches.
	run("size=64KiB/inflight=256/local", bk.LocalClient(), 64<<10, 256, false)
	recycling(b)
	// Latency at half the max rate: 1 KiB adds paced at half the rate
	// measured above at 256 in flight.
	// The same through bk.LocalClient (the in-process path strata
	// standalone uses): the difference is what gRPC and its goroutines add.
	for _, tr := range []struct {
		name string
		c    bookiepb.BookieClient
	}{{"grpc", c}, {"local", bk.LocalClient()}} {
		b.Run("size=1KiB/half-max-rate/"+tr.name, func(b *testing.B) {
			v, ok := maxAddRate.Load(1 << 10)
			if !ok {
				b.Skip("needs the size=1KiB/inflight=256 run")
			}
			ledger++
			syncs.Lock()
			syncs.h.Reset()
			syncs.Unlock()
			meter := hiccup.Start()
			h := pacedLoad(b, tr.c, ledger, 1<<10, v.(float64)/2)
			hic := meter.Stop()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "adds/s")
			reportLatency(b, h)
			// And the machine's: how late it woke a goroutine sleeping
			// 1 ms meanwhile (internal/hiccup).
			b.ReportMetric(float64(hic.ValueAtQuantile(99)), "hiccup-p99-µs")
			b.ReportMetric(float64(hic.Max()), "hiccup-max-µs")
			// An add waits for at least one fdatasync, so the disk's tail
			// is the floor of the adds' tail: report both.
			syncs.Lock()
			b.ReportMetric(float64(syncs.h.ValueAtQuantile(99)), "journal-fsync-p99-µs")
			b.ReportMetric(float64(syncs.h.Max()), "journal-fsync-max-µs")
			syncs.Unlock()
			b.ReportMetric(float64(raw.syncLat.ValueAtQuantile(99)), "raw-fsync-p99-µs")
		})
	}
}

// recycling measures the steady state of a bookie whose ledgers are
// offloaded and deleted about as fast as they are written, as Strata's
// tiering does: 64 KiB adds with 256 in flight, over gRPC and through
// LocalClient, into ledgers of half a segment each, each deleted once two more were begun,
// with checkpoints (which reclaim) every 100 ms. Reclaimed segments come
// back as free ones (Config.JournalRecycleSegments), so once the first
// are reclaimed the journal writes into blocks already written: neither
// zeros nor new extents. Its own bookie, so that the one above keeps its
// segments; compare with size=64KiB/inflight=256 and .../local.
func recycling(b *testing.B) {
	bk, err := Open(Config{DataDir: benchDir(b), CheckpointInterval: 100 * time.Millisecond}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer bk.Close()
	c, _ := dial(b, serve(b, bk))
	for _, tr := range []struct {
		name string
		c    bookiepb.BookieClient
	}{{"grpc", c}, {"local", bk.LocalClient()}} {
		recyclingRun(b, bk, tr.name, tr.c)
	}
}

var nextBenchLedger = uint64(1 << 32) // ledger ids across runs and b.N's rounds

func recyclingRun(b *testing.B, bk *Bookie, name string, c bookiepb.BookieClient) {
	const size = 64 << 10
	perLedger := int(DefaultJournalFileBytes / 2 / (size + journal.HeaderSize))
	b.Run("size=64KiB/inflight=256/recycling/"+name, func(b *testing.B) {
		created := counterValue(bk.metrics.segmentsCreated.WithLabelValues("true")) + counterValue(bk.metrics.segmentsCreated.WithLabelValues("false"))
		recycled := counterValue(bk.metrics.recycled)
		_, before, _ := rawWriteSync(b, 1<<20, time.Second, true)
		first := nextBenchLedger
		var deletes sync.WaitGroup
		window := make(chan struct{}, 256)
		cpu0 := cpuTime(b)
		h := runAdds(b, c, func(i int) (uint64, int64) {
			k := uint64(i / perLedger)
			if i%perLedger == 0 && k >= 2 {
				deletes.Go(func() { bk.Delete(context.Background(), ids.LedgerID(first+k-2)) })
			}
			nextBenchLedger = max(nextBenchLedger, first+k+1)
			return first + k, int64(i % perLedger)
		}, size, func(int) time.Time { window <- struct{}{}; return time.Now() }, func() { <-window })
		reportCPUPerGB(b, cpuTime(b)-cpu0, int64(b.N)*size)
		rate := float64(b.N) / b.Elapsed().Seconds()
		deletes.Wait()
		_, after, _ := rawWriteSync(b, 1<<20, time.Second, true)
		bandwidth := (before + after) / 2
		created = counterValue(bk.metrics.segmentsCreated.WithLabelValues("true")) + counterValue(bk.metrics.segmentsCreated.WithLabelValues("false")) - created
		recycled = counterValue(bk.metrics.recycled) - recycled
		b.ReportMetric(rate, "adds/s")
		reportLatency(b, h)
		b.ReportMetric(bandwidth/1e6, "raw-MB/s-around")
		b.ReportMetric(100*rate*size/bandwidth, "%-raw-bandwidth")
		if created+recycled > 0 {
			b.ReportMetric(100*recycled/(created+recycled), "%-segments-recycled")
		}
	})
}
