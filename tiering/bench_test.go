package tiering

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/tiering/miniotest"
)

// benchLedger makes a closed ledger of n entries of msgs messages of
// payload bytes each, publish times 1 ms apart from t0.
func benchLedger(src *memSource, id ids.LedgerID, n, msgs, payload int, t0 int64) (*metadata.Ledger, int64) {
	r := rand.New(rand.NewPCG(uint64(id), 1))
	body := make([]byte, payload*msgs)
	for i := range body {
		body[i] = byte(r.Uint32())
	}
	es := make([][]byte, n)
	var bytes int64
	for e := range es {
		b := &entry.Batch{ProducerName: "bench", PublishTime: t0 + int64(e)*1e6}
		for i := 0; i < msgs; i++ {
			b.Messages = append(b.Messages, entry.Message{SequenceID: uint64(e*msgs + i), Key: "k", Payload: body[i*payload : (i+1)*payload]})
		}
		es[e] = entry.Encode(b)
		bytes += int64(msgs * payload)
	}
	src.entries[id] = es
	return &metadata.Ledger{ID: id, State: metadata.LedgerClosed, LastEntry: ids.EntryID(n - 1), Topic: "bench/ns/t",
		FirstPublishTime: t0, LastPublishTime: t0 + int64(n-1)*1e6}, bytes
}

// BenchmarkTiering measures, against a real MinIO on loopback:
//   - Offload: a 40 MiB-payload ledger (4,000 entries × 10 messages × 1 KiB)
//     written, read back and verified; MB/s of payload and object size.
//   - Read: the same ledger read back through a Reader with read-ahead.
//   - Seek: time lookups over 100 offloaded ledgers holding 1,000,000
//     messages; latency percentiles and object reads per seek.
func BenchmarkTiering(b *testing.B) {
	srv := miniotest.Start(b)
	ctx := context.Background()
	store, err := NewS3Store(S3Config{Endpoint: srv.Endpoint, Bucket: srv.Bucket, Prefix: "bench",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		b.Fatal(err)
	}
	src := &memSource{entries: map[ids.LedgerID][][]byte{}}
	big, bigBytes := benchLedger(src, 1, 4000, 10, 1024, 1e18)
	o, err := NewOffloader(store, src, OffloaderConfig{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Offload", func(b *testing.B) {
		b.SetBytes(bigBytes)
		var objects, objBytes int64
		for i := 0; i < b.N; i++ {
			off, err := o.Offload(ctx, big)
			if err != nil {
				b.Fatal(err)
			}
			big.Offload = off
			for _, s := range off.Segments {
				objects, objBytes = objects+1, objBytes+s.Bytes
			}
		}
		b.ReportMetric(float64(objBytes)/float64(objects)/(1<<20), "MiB/object")
	})
	b.Run("Read", func(b *testing.B) {
		if big.Offload == nil {
			b.Skip("needs the Offload benchmark")
		}
		b.SetBytes(bigBytes)
		for i := 0; i < b.N; i++ {
			r, _ := NewReader(store, ReaderConfig{ReadAheadBatches: 4})
			for e := ids.EntryID(0); e <= big.LastEntry; {
				got, err := r.ReadEntries(ctx, big, e, min(e+999, big.LastEntry))
				if err != nil {
					b.Fatal(err)
				}
				e = got[len(got)-1].Entry + 1
			}
			r.Close()
		}
	})
	b.Run("Get4KiB", func(b *testing.B) {
		// The store's small-read latency, the yardstick for a seek.
		if err := store.Put(ctx, "small", bytesReader(make([]byte, 64<<10)), 64<<10); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(4 << 10)
		for i := 0; i < b.N; i++ {
			if _, err := store.Get(ctx, "small", int64(i%16)<<12, 4<<10); err != nil {
				b.Fatal(err)
			}
		}
	})
	infos, ledgers := seekSetup(b, store, src)
	b.Run("Seek", func(b *testing.B) { benchSeek(b, store, infos, ledgers) })
}

const (
	seekLedgers, seekEntries, seekMsgs = 100, 1000, 10 // 1,000,000 messages
	seekT0                             = int64(1e18)
)

func seekSetup(b *testing.B, store Store, src *memSource) ([]metadata.LedgerInfo, memLedgers) {
	ctx := context.Background()
	const ledgersN, entriesN, msgsN = seekLedgers, seekEntries, seekMsgs
	o, _ := NewOffloader(store, src, OffloaderConfig{Logger: quietLogger(), MaxConcurrentUploads: 2})
	ledgers := memLedgers{}
	var infos []metadata.LedgerInfo
	t0 := seekT0
	start := time.Now()
	for i := 0; i < ledgersN; i++ {
		id := ids.LedgerID(1000 + i)
		l, _ := benchLedger(src, id, entriesN, msgsN, 16, t0+int64(i)*entriesN*1e6)
		off, err := o.Offload(ctx, l)
		if err != nil {
			b.Fatal(err)
		}
		delete(src.entries, id)
		l.Offload = off
		ledgers[id] = l
		infos = append(infos, metadata.LedgerInfo{ID: id, Entries: entriesN, Closed: true, Offloaded: true,
			FirstPublishTime: l.FirstPublishTime, LastPublishTime: l.LastPublishTime})
	}
	b.Logf("setup: %d ledgers, %d messages offloaded in %v", ledgersN, ledgersN*entriesN*msgsN, time.Since(start))
	return infos, ledgers
}

func benchSeek(b *testing.B, store Store, infos []metadata.LedgerInfo, ledgers memLedgers) {
	ctx := context.Background()
	t0 := seekT0
	s := NewSeeker(store, ledgers)
	r := rand.New(rand.NewPCG(7, 7))
	span := int64(seekLedgers * seekEntries * 1e6)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pt := t0 + r.Int64N(span)
		t := time.Now()
		res, err := s.Seek(ctx, infos, pt)
		lat = append(lat, time.Since(t))
		if err != nil || !res.Found {
			b.Fatalf("seek %d: %+v %v", pt, res, err)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(s.ObjectReads())/float64(b.N), "reads/seek")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
