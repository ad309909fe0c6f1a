package metadata_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

const ownedTopic = "public/default/owned"

func TestSecondNodeCannotAcquireWhileFirstSessionLives(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	ss1, ss2 := newSession(t, s1, 10*time.Second), newSession(t, s2, 10*time.Second)
	o1 := metadata.Ownership{Topic: ownedTopic, NodeID: "n1", GRPCAddr: "10.0.0.1:6650"}
	cur, ok, err := s1.AcquireOwnership(ctx, ss1, o1)
	if err != nil || !ok || cur.NodeID != "n1" || cur.Version == 0 {
		t.Fatalf("first acquire: %+v %v %v", cur, ok, err)
	}
	cur2, ok, err := s2.AcquireOwnership(ctx, ss2, metadata.Ownership{Topic: ownedTopic, NodeID: "n2"})
	if err != nil || ok {
		t.Fatalf("second node acquired: %v %v", ok, err)
	}
	if cur2 != cur {
		t.Fatalf("second node sees %+v, want the first's %+v", cur2, cur)
	}
	again, ok, err := s1.AcquireOwnership(ctx, ss1, o1)
	if err != nil || !ok || again != cur {
		t.Fatalf("re-acquire by the owner's session: %+v %v %v", again, ok, err)
	}
	got, err := s2.GetOwnership(ctx, ownedTopic)
	if err != nil || *got != cur {
		t.Fatalf("get: %+v %v", got, err)
	}
}

func TestOwnershipVanishesWhenSessionClosed(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	ss1, ss2 := newSession(t, s1, 30*time.Second), newSession(t, s2, 30*time.Second)
	if _, ok, err := s1.AcquireOwnership(ctx, ss1, metadata.Ownership{Topic: ownedTopic, NodeID: "n1"}); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	if err := ss1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.GetOwnership(ctx, ownedTopic); err != metadata.ErrNotFound {
		t.Fatalf("ownership after session close: %v, want ErrNotFound", err)
	}
	if _, ok, err := s2.AcquireOwnership(ctx, ss2, metadata.Ownership{Topic: ownedTopic, NodeID: "n2"}); err != nil || !ok {
		t.Fatalf("takeover: %v %v", ok, err)
	}
	select {
	case <-ss1.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
}

func TestOwnershipVanishesWhenLeaseExpires(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	eps := metatest.StartEtcd(t)
	observer := metatest.OpenStoreAt(t, eps)
	dying, err := metadata.Open(ctx, metadata.Config{Endpoints: eps})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := dying.NewSession(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := dying.AcquireOwnership(ctx, ss, metadata.Ownership{Topic: ownedTopic, NodeID: "dead"}); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	// The process "dies": its client goes away without revoking the lease,
	// so only expiry can remove the key.
	dying.Close()
	if _, err := observer.GetOwnership(ctx, ownedTopic); err != nil {
		t.Fatalf("key gone before expiry, lease revoked on client close? %v", err)
	}
	waitFor(t, 20*time.Second, "ownership key to expire", func() bool {
		_, err := observer.GetOwnership(ctx, ownedTopic)
		return err == metadata.ErrNotFound
	})
	ss2 := newSession(t, observer, 10*time.Second)
	if _, ok, err := observer.AcquireOwnership(ctx, ss2, metadata.Ownership{Topic: ownedTopic, NodeID: "n2"}); err != nil || !ok {
		t.Fatalf("takeover after expiry: %v %v", ok, err)
	}
}

func TestSessionDoneFiresWhenLeaseLost(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	ss := newSession(t, s1, 3*time.Second)
	if err := s1.RegisterNode(ctx, ss, metadata.NodeInfo{ID: "n1", GRPCAddr: "a:1"}); err != nil {
		t.Fatal(err)
	}
	// Another party revokes the lease (as etcd does when it expires).
	if _, err := s2.Client().Revoke(ctx, clientLease(ss)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ss.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("Done not closed after the lease was revoked")
	}
	_, _, err := s1.AcquireOwnership(ctx, ss, metadata.Ownership{Topic: ownedTopic, NodeID: "n1"})
	if !errors.Is(err, metadata.ErrSessionLost) {
		t.Fatalf("acquire with a lost session: %v, want ErrSessionLost", err)
	}
	if _, err := s2.GetOwnership(ctx, ownedTopic); err != metadata.ErrNotFound {
		t.Fatalf("a lost session acquired ownership: %v", err)
	}
	if nodes, _ := s2.ListNodes(ctx); len(nodes) != 0 {
		t.Fatalf("registration outlived its lease: %+v", nodes)
	}
	if err := ss.Close(); err != nil {
		t.Fatalf("closing a lost session: %v", err)
	}
}

func TestWatchOwnershipFiresOnAcquireAndRelease(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	ss := newSession(t, s1, 30*time.Second)
	ch := s2.WatchOwnership(ctx, ownedTopic)
	o, ok, err := s1.AcquireOwnership(ctx, ss, metadata.Ownership{Topic: ownedTopic, NodeID: "n1"})
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	expectSignal(t, ch, "acquire")
	if err := s1.ReleaseOwnership(ctx, o); err != nil {
		t.Fatal(err)
	}
	expectSignal(t, ch, "release")
	if _, err := s1.GetOwnership(ctx, ownedTopic); err != metadata.ErrNotFound {
		t.Fatalf("after release: %v", err)
	}
}

func TestWatchOwnershipClosesWhenContextEnds(t *testing.T) {
	t.Parallel()
	s := metatest.OpenStore(t)
	ctx, cancel := testCtxCancel(t)
	ch := s.WatchOwnership(ctx, ownedTopic)
	cancel()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed after cancel")
		}
	}
}

func expectSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("watch closed instead of signalling %s", what)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no watch signal for %s", what)
	}
}

func TestRegistrationsListedAndGoneWithSession(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	ss := newSession(t, s1, 30*time.Second)
	for _, n := range []metadata.NodeInfo{{ID: "n2", GRPCAddr: "b:1"}, {ID: "n1", GRPCAddr: "a:1"}} {
		if err := s1.RegisterNode(ctx, ss, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.RegisterBookie(ctx, ss, metadata.BookieInfo{ID: "127.0.0.1:3181", Addr: "127.0.0.1:3181"}); err != nil {
		t.Fatal(err)
	}
	nodes, err := s2.ListNodes(ctx)
	if err != nil || len(nodes) != 2 || nodes[0].ID != "n1" || nodes[1].GRPCAddr != "b:1" {
		t.Fatalf("nodes: %+v %v", nodes, err)
	}
	bookies, err := s2.ListBookies(ctx)
	if err != nil || len(bookies) != 1 || bookies[0].Addr != "127.0.0.1:3181" {
		t.Fatalf("bookies: %+v %v", bookies, err)
	}
	if err := s1.RegisterNode(ctx, ss, metadata.NodeInfo{ID: "a/b"}); err == nil {
		t.Fatal("node id with '/' accepted")
	}
	ss.Close()
	nodes, _ = s2.ListNodes(ctx)
	bookies, _ = s2.ListBookies(ctx)
	if len(nodes)+len(bookies) != 0 {
		t.Fatalf("registrations outlived the session: %+v %+v", nodes, bookies)
	}
}

func TestSessionDoneFiresWhenEtcdUnreachable(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	eps := metatest.StartEtcd(t)
	p := newCutProxy(t, strings.TrimPrefix(eps[0], "http://"))
	s := metatest.OpenStoreAt(t, []string{"http://" + p.addr()})
	ss := newSession(t, s, 2*time.Second)
	if err := s.RegisterNode(ctx, ss, metadata.NodeInfo{ID: "n1"}); err != nil {
		t.Fatal(err)
	}
	p.cut() // partition the node from etcd: keep-alives stop arriving
	select {
	case <-ss.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("Done not closed after the lease's TTL passed without etcd")
	}
	other := metatest.OpenStoreAt(t, eps)
	waitFor(t, 20*time.Second, "the partitioned node's registration to expire", func() bool {
		nodes, err := other.ListNodes(ctx)
		return err == nil && len(nodes) == 0
	})
}

func TestOwnedTopicsAreCountedByNodeAndGoWithTheSession(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	ss1, ss2 := newSession(t, s1, 10*time.Second), newSession(t, s2, 10*time.Second)
	for i, topic := range []string{"a/b/one", "a/b/two", "a/c/three"} {
		s, ss, node := s1, ss1, "n1"
		if i == 2 {
			s, ss, node = s2, ss2, "n2"
		}
		if _, ok, err := s.AcquireOwnership(ctx, ss, metadata.Ownership{Topic: topic, NodeID: node}); err != nil || !ok {
			t.Fatalf("acquire %s: %v %v", topic, ok, err)
		}
	}
	if got, err := s1.CountOwnedTopics(ctx); err != nil || got["n1"] != 2 || got["n2"] != 1 || len(got) != 2 {
		t.Fatalf("counts %v %v, want n1:2 n2:1", got, err)
	}
	if err := ss1.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := s2.CountOwnedTopics(ctx); err != nil || len(got) != 1 || got["n2"] != 1 {
		t.Fatalf("counts after n1's session closed: %v %v", got, err)
	}
}

// A node that deregisters (shutting down) leaves the node list at once,
// while its session, and the topics it owns under it, live on until it
// has handed them over.
func TestADeregisteredNodeLeavesTheListWhileItsSessionKeepsItsTopics(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	ss := newSession(t, s1, 10*time.Second)
	if err := s1.RegisterNode(ctx, ss, metadata.NodeInfo{ID: "leaving", GRPCAddr: "a:1"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s1.AcquireOwnership(ctx, ss, metadata.Ownership{Topic: ownedTopic, NodeID: "leaving"}); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	if err := s1.DeregisterNode(ctx, "leaving"); err != nil {
		t.Fatal(err)
	}
	if nodes, err := s2.ListNodes(ctx); err != nil || len(nodes) != 0 {
		t.Fatalf("nodes after the deregistration: %+v, %v", nodes, err)
	}
	if o, err := s2.GetOwnership(ctx, ownedTopic); err != nil || o.NodeID != "leaving" {
		t.Fatalf("ownership after the deregistration: %+v, %v; want it kept", o, err)
	}
	if err := s1.DeregisterNode(ctx, "leaving"); err != nil {
		t.Fatalf("deregistering again: %v", err)
	}
}
