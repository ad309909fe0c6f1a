package tiering

import (
	"context"
	"os"
	"path/filepath"
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

// TestCollectGarbageRemovesTheTemporaryFilesACrashedPutLeft: a directory
// store writes an object through a temporary file, which a crash mid-Put
// leaves behind, out of List's sight. The topic's collection removes those
// last changed before its cutoff, and leaves a fresh one (a Put under
// way), those of other topics, and the objects.
func TestCollectGarbageRemovesTheTemporaryFilesACrashedPutLeft(t *testing.T) {
	ctx := context.Background()
	store := mustDir(t)
	put(t, store, "acme/ns/orders/obj", []byte("kept"))
	temp := func(dir string, age time.Duration) string {
		p := filepath.Join(store.Root(), dir, tmpPrefix+"crashed")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("half an object"), 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := temp("acme/ns/orders", 2*time.Hour)
	fresh := temp("acme/ns/orders/sub", 0)
	other := temp("acme/ns/payments", 2*time.Hour)
	if _, err := CollectGarbage(ctx, store, "acme/ns/orders", func(string) bool { return true }, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if exists(stale) {
		t.Fatal("a temporary file older than the cutoff survived the topic's collection")
	}
	if !exists(fresh) || !exists(other) {
		t.Fatalf("removed a temporary file newer than the cutoff (%v) or another topic's (%v)", !exists(fresh), !exists(other))
	}
	if _, err := store.Stat(ctx, "acme/ns/orders/obj"); err != nil {
		t.Fatalf("the object: %v", err)
	}
	if _, err := CollectGarbage(ctx, store, "acme/ns/none", func(string) bool { return true }, time.Now()); err != nil {
		t.Fatalf("a topic without a directory: %v", err)
	}
}
