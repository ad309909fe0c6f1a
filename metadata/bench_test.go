package metadata_test

import (
	"context"
	"testing"

	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

// BenchmarkNewLedgerID measures id allocation (one etcd write per 1000).
func BenchmarkNewLedgerID(b *testing.B) {
	s := metatest.OpenStore(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.NewLedgerID(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutCursor measures one compare-and-swap round trip to an
// embedded etcd (metatest turns fsync off: this is the store's own cost).
func BenchmarkPutCursor(b *testing.B) {
	s := metatest.OpenStore(b)
	ctx := context.Background()
	c := &metadata.Cursor{Topic: "public/default/bench", Subscription: "s", AckedRanges: make([]byte, 256)}
	for b.Loop() {
		c.MarkDelete.Entry++
		if err := s.PutCursor(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAcquireReleaseOwnership measures a takeover's two transactions.
func BenchmarkAcquireReleaseOwnership(b *testing.B) {
	s := metatest.OpenStore(b)
	ctx := context.Background()
	ss, err := s.NewSession(ctx, 10e9)
	if err != nil {
		b.Fatal(err)
	}
	defer ss.Close()
	for b.Loop() {
		o, ok, err := s.AcquireOwnership(ctx, ss, metadata.Ownership{Topic: "public/default/bench", NodeID: "n"})
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		if err := s.ReleaseOwnership(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
}
