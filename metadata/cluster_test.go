package metadata_test

import (
	"context"
	"errors"
	"testing"

	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

// TestInitClusterIDConcurrentFirstStartsAgreeOnOneID starts several stores
// on a fresh etcd at once, each creating the cluster id if absent: they
// must all answer the same id (one creation wins, the others read it), and
// ClusterID must read that id back, also from a store opened later.
func TestInitClusterIDConcurrentFirstStartsAgreeOnOneID(t *testing.T) {
	eps := metatest.StartEtcd(t)
	const n = 8
	stores := make([]*metadata.Store, n)
	for i := range stores {
		stores[i] = metatest.OpenStoreAt(t, eps)
	}
	if _, err := stores[0].ClusterID(testCtx(t)); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("ClusterID before any InitClusterID: %v, want ErrNotFound", err)
	}
	got := make(chan string, n)
	errs := make(chan error, n)
	for _, s := range stores {
		go func() {
			id, err := s.InitClusterID(testCtx(t))
			got <- id
			errs <- err
		}()
	}
	var first string
	for i := range n {
		id := <-got
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if len(id) != 32 {
			t.Fatalf("cluster id %q: want 32 hex digits", id)
		}
		if i == 0 {
			first = id
		} else if id != first {
			t.Fatalf("concurrent InitClusterID answered %q and %q", first, id)
		}
	}
	later := metatest.OpenStoreAt(t, eps)
	if id, err := later.ClusterID(testCtx(t)); err != nil || id != first {
		t.Fatalf("ClusterID = %q, %v; want %q", id, err, first)
	}
	if id, err := later.InitClusterID(testCtx(t)); err != nil || id != first {
		t.Fatalf("InitClusterID once it exists = %q, %v; want %q", id, err, first)
	}
}

// TestClusterIDIsPerPrefix: two prefixes on one etcd are two clusters,
// each with its own id, as two etcds would be.
func TestClusterIDIsPerPrefix(t *testing.T) {
	eps := metatest.StartEtcd(t)
	ids := map[string]string{}
	for _, prefix := range []string{"/a", "/b"} {
		s, err := metadata.Open(context.Background(), metadata.Config{Endpoints: eps, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if ids[prefix], err = s.InitClusterID(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if ids["/a"] == ids["/b"] {
		t.Fatalf("prefixes /a and /b share cluster id %q", ids["/a"])
	}
}
