package ledger_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata/metatest"
)

// benchAppend measures pipelined appends of size-byte entries to real
// bookies on loopback (fsync on), metadata in memory.
func benchAppend(b *testing.B, bookies int, opts ledger.CreateOptions, size int) {
	c := startClusterWith(b, bookies, metatest.NewMemLedgerStore())
	cl := c.client(b)
	w, err := cl.Create(context.Background(), opts)
	if err != nil {
		b.Fatal(err)
	}
	p := bytes.Repeat([]byte("x"), size)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		wg.Add(1)
		w.Append(p, func(_ ids.EntryID, err error) {
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

func BenchmarkAppend1KiBStandalone(b *testing.B) {
	benchAppend(b, 1, ledger.StandaloneOptions(), 1024)
}

func BenchmarkAppend1KiBE3Qw3Qa2(b *testing.B) {
	benchAppend(b, 3, ledger.ClusterOptions(), 1024)
}

// BenchmarkCatchUpRead reads back a closed 40 MiB ledger (4,000 entries of
// 10 KiB, the shape of tiering's BenchmarkTiering/Read) from one real bookie
// on loopback, as a catch-up consumer's reads do: the bookie side of the
// object store vs bookies comparison in docs/benchmarks.md.
func BenchmarkCatchUpRead(b *testing.B) {
	const entries, size = 4000, 10 << 10
	c := startClusterWith(b, 1, metatest.NewMemLedgerStore())
	cl := c.client(b)
	ctx := context.Background()
	w, err := cl.Create(ctx, ledger.StandaloneOptions())
	if err != nil {
		b.Fatal(err)
	}
	p := bytes.Repeat([]byte("x"), size)
	for range entries {
		if _, err := w.AppendSync(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	l, err := w.Close(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(entries * size)
	b.ResetTimer()
	for range b.N {
		for e := ids.EntryID(0); e <= l.LastEntry; {
			got, err := cl.Read(ctx, l, e, min(e+999, l.LastEntry))
			if err != nil {
				b.Fatal(err)
			}
			e = got[len(got)-1].ID + 1
		}
	}
}
