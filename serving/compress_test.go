package serving_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

var allCodecs = []entry.Compression{entry.CompressionLZ4, entry.CompressionZlib, entry.CompressionZstd, entry.CompressionSnappy}

// compressedBatch is messages first..last (as msg makes them) sent as the
// SDK sends them compressed with c.
func compressedBatch(t *testing.T, c entry.Compression, first, last uint64) *servingpb.SendBatch {
	t.Helper()
	var raw []byte
	for i := first; i <= last; i++ {
		m := msg(i)
		raw = entry.AppendMessage(raw, &entry.Message{SequenceID: i, Key: m.GetKey(), Properties: m.GetProperties(), Payload: m.GetPayload()})
	}
	z, err := entry.Compress(c, raw)
	if err != nil || z == nil {
		t.Fatalf("%s: %d bytes from %d, %v", c, len(z), len(raw), err)
	}
	return &servingpb.SendBatch{Encoded: z, Count: uint32(last - first + 1),
		Compression: servingpb.Compression(c), UncompressedSize: uint32(len(raw))}
}

func TestCompressedBatchesAreStoredCompressedAndConsumedDecompressed(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.CacheBytes = 1 }) // consumers read the stored entries
	const topic = "public/default/compressed"
	p := mustProducer(t, n, topic, "p")
	const per = 30
	for i, codec := range allCodecs {
		first := uint64(i*per + 1)
		r, err := p.sendBatch(compressedBatch(t, codec, first, first+per-1))
		if err != nil || r.GetReceipt() == nil {
			t.Fatalf("%s batch: %v %v", codec, r, err)
		}
	}
	// Each entry holds its batch as it came: compressed, with its codec.
	ctx := ctxT(t)
	ml, err := c.meta.GetManagedLedger(ctx, topic)
	if err != nil || len(ml.Ledgers) == 0 {
		t.Fatalf("managed ledger: %v %v", ml, err)
	}
	rec, err := c.meta.GetLedger(ctx, ml.Ledgers[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	es, err := c.ledgers.Read(ctx, rec, 0, ids.EntryID(len(allCodecs)-1))
	if err != nil || len(es) != len(allCodecs) {
		t.Fatalf("read: %d entries, %v", len(es), err)
	}
	for i, e := range es {
		first := uint64(i*per + 1)
		sent := compressedBatch(t, allCodecs[i], first, first+per-1)
		if got := entry.Compression(e.Payload[3]); got != allCodecs[i] || !bytes.Contains(e.Payload, sent.GetEncoded()) {
			t.Fatalf("entry %d: codec %s, holds the bytes sent: %v", i, got, bytes.Contains(e.Payload, sent.GetEncoded()))
		}
	}
	got := consumeAll(t, n, topic, "s", per*len(allCodecs))
	checkInOrder(t, got, 1, per*uint64(len(allCodecs)))
}

func TestMalformedCompressedBatchesAreRefusedAndNothingIsWritten(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	p := mustProducer(t, n, "public/default/bad-compressed", "p")
	good := compressedBatch(t, entry.CompressionZstd, 1, 20)
	with := func(f func(b *servingpb.SendBatch)) *servingpb.SendBatch {
		b := compressedBatch(t, entry.CompressionZstd, 1, 20)
		f(b)
		return b
	}
	for name, tc := range map[string]struct {
		b    *servingpb.SendBatch
		code errcode.Code
	}{
		"unknown codec":  {with(func(b *servingpb.SendBatch) { b.Compression = 9 }), errcode.InvalidArgument},
		"other codec":    {with(func(b *servingpb.SendBatch) { b.Compression = servingpb.Compression_LZ4 }), errcode.InvalidArgument},
		"size too small": {with(func(b *servingpb.SendBatch) { b.UncompressedSize-- }), errcode.InvalidArgument},
		"size too large": {with(func(b *servingpb.SendBatch) { b.UncompressedSize++ }), errcode.InvalidArgument},
		"no size":        {with(func(b *servingpb.SendBatch) { b.UncompressedSize = 0 }), errcode.InvalidArgument},
		"garbage":        {with(func(b *servingpb.SendBatch) { b.Encoded = []byte("not zstd at all") }), errcode.InvalidArgument},
		"truncated":      {with(func(b *servingpb.SendBatch) { b.Encoded = b.Encoded[:len(b.Encoded)/2] }), errcode.InvalidArgument},
		"count too high": {with(func(b *servingpb.SendBatch) { b.Count++ }), errcode.InvalidArgument},
		"bomb":           {with(func(b *servingpb.SendBatch) { b.UncompressedSize = entry.MaxUncompressedBytes + 1 }), errcode.MessageTooLarge},
	} {
		r, err := p.sendBatch(tc.b)
		if err != nil || errcode.Code(r.GetError().GetCode()) != tc.code {
			t.Fatalf("%s: got %v %v, want a %v send error", name, r, err, tc.code)
		}
	}
	r, err := p.sendBatch(good)
	if err != nil || r.GetReceipt() == nil || r.GetReceipt().GetEntry() != 0 {
		t.Fatalf("good compressed batch: %v %v (a refused batch was written?)", r, err)
	}
}

func TestCompressedBatchesSurviveOffloadToTheObjectStore(t *testing.T) {
	e := newTierEnv(t, func(_ *serving.Config, tc *serving.TierConfig) { tc.Interval = 50 * time.Millisecond })
	const topic = "public/auto/compressed"
	p := mustProducer(t, e.n, topic, "p1")
	const per = 20
	total := uint64(0)
	for range 3 { // 12 entries over ledgers of 5: two closed
		for _, codec := range allCodecs {
			r, err := p.sendBatch(compressedBatch(t, codec, total+1, total+per))
			if err != nil || r.GetReceipt() == nil {
				t.Fatalf("%s batch: %v %v", codec, r, err)
			}
			total += per
		}
	}
	before := consumeAll(t, e.n, topic, "before", int(total))
	checkInOrder(t, before, 1, total)
	e.setPolicy("public/auto", &servingpb.NamespacePolicy{RetentionMs: -1})
	eventually(t, "closed ledgers offloaded and deleted from bookies", func() error { return e.allOffloadedAndDeleted(topic, 2) })
	checkSame(t, consumeAll(t, e.n, topic, "after", int(total)), before)
}
