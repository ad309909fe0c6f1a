// Package metatest starts real embedded etcd servers and metadata stores for
// the tests of other packages. Everything it starts is stopped in
// t.Cleanup.
package metatest

import (
	"context"
	"testing"
	"time"

	"github.com/strata-mq/strata/metadata"
)

// startTimeout bounds the start of an embedded etcd on a loaded machine.
const startTimeout = 60 * time.Second

// StartEtcd starts an embedded single-member etcd with its data in
// t.TempDir(), on random loopback ports, and returns its client endpoints.
// fsync is off: the data need not survive a machine crash in a test.
func StartEtcd(t testing.TB) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	e, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{
		Dir:           t.TempDir(),
		ClientAddr:    "127.0.0.1:0",
		PeerAddr:      "127.0.0.1:0",
		UnsafeNoFsync: true,
	}, nil)
	if err != nil {
		t.Fatalf("metatest: start embedded etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("metatest: close embedded etcd: %v", err)
		}
	})
	return e.Endpoints()
}

// OpenStore starts an embedded etcd (StartEtcd) and opens a Store on it.
func OpenStore(t testing.TB) *metadata.Store {
	t.Helper()
	return OpenStoreAt(t, StartEtcd(t))
}

// OpenStoreAt opens a Store on existing endpoints, closed in t.Cleanup.
func OpenStoreAt(t testing.TB, endpoints []string) *metadata.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	s, err := metadata.Open(ctx, metadata.Config{Endpoints: endpoints})
	if err != nil {
		t.Fatalf("metatest: open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
