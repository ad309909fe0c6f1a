package tiering

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestCollectGarbageDeletesOnlyOldUnreferencedSegments(t *testing.T) {
	ctx := context.Background()
	store, src := mustDir(t), &memSource{}
	o := testOffloader(t, store, src)
	l, _ := testLedger(src, 21, 300, 3, 300, 1, 1, 9)
	kept, err := o.Offload(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := o.Offload(ctx, l) // a second offload nobody recorded
	if err != nil {
		t.Fatal(err)
	}
	put(t, store, "acme/ns/orders/notes.txt", []byte("not ours"))
	refs := map[string]bool{}
	for _, s := range kept.Segments {
		refs[s.Key] = true
	}
	referenced := func(k string) bool { return refs[k] }
	// A cutoff before the objects were made spares everything.
	if got, err := CollectGarbage(ctx, store, "acme/ns/orders", referenced, time.Now().Add(-time.Hour)); err != nil || len(got) != 0 {
		t.Fatalf("early cutoff deleted %v, %v", got, err)
	}
	got, err := CollectGarbage(ctx, store, "acme/ns/orders", referenced, time.Now().Add(time.Second))
	if err != nil || len(got) != len(orphan.Segments) {
		t.Fatalf("deleted %v, %v; want the %d unrecorded objects", got, err, len(orphan.Segments))
	}
	var left []string
	store.List(ctx, "", func(o ObjectInfo) error { left = append(left, o.Key); return nil })
	if len(left) != len(kept.Segments)+1 {
		t.Fatalf("left %v", left)
	}
	for _, k := range left {
		if !refs[k] && !strings.HasSuffix(k, "notes.txt") {
			t.Fatalf("unreferenced %s survived", k)
		}
	}
}
