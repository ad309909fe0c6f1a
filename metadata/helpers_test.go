package metadata_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// twoStores opens two independent stores (two etcd clients) on one etcd.
func twoStores(t *testing.T) (*metadata.Store, *metadata.Store) {
	eps := metatest.StartEtcd(t)
	return metatest.OpenStoreAt(t, eps), metatest.OpenStoreAt(t, eps)
}

func newSession(t *testing.T, s *metadata.Store, ttl time.Duration) *metadata.Session {
	t.Helper()
	ss, err := s.NewSession(testCtx(t), ttl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	return ss
}

// raced holds the errors of two writes run at once.
type raced struct{ a, b error }

// race runs the two writes at once and returns their errors.
func race(a, b func() error) raced {
	errs := make(chan error, 1)
	go func() { errs <- b() }()
	ea := a()
	return raced{ea, <-errs}
}

func testCtxCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx, cancel
}

// clientLease converts a session's lease id for the raw etcd client.
func clientLease(ss *metadata.Session) clientv3.LeaseID { return clientv3.LeaseID(ss.LeaseID()) }
