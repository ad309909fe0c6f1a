package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

// TestBookieWithEtcdRegistersAndDeregistersOnShutdown runs `strata bookie
// --etcd` as a process against a real embedded etcd: serving nodes can only
// choose a bookie that is registered, and must stop choosing it once it is
// gone. On SIGTERM the registration goes first, before the bookie ends the
// Add stream a serving node holds open, and that stream ends with the
// bookie's own UNAVAILABLE once its adds are answered, not cut off when
// the shutdown grace runs out.
func TestBookieWithEtcdRegistersAndDeregistersOnShutdown(t *testing.T) {
	store := metatest.OpenStore(t)
	endpoints := store.Client().Endpoints()
	addr := freeAddrs(t, 1)[0]
	cmd := exec.Command(strataBin, "bookie", "--data-dir", t.TempDir(), "--listen", addr,
		"--etcd", endpoints[0], "--lease-ttl", "2s")
	// Read only after Wait returns, which is after the copying ends.
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("bookie output:\n%s", out.String())
		}
	})
	registered := func() bool {
		bs, err := store.ListBookies(testContext(t, 5*time.Second))
		if err != nil {
			return false
		}
		for _, b := range bs {
			if b.ID == addr && b.Addr == addr {
				return true
			}
		}
		return false
	}
	waitFor(t, 30*time.Second, "bookie registered in etcd", registered)
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	st, err := bookiepb.NewBookieClient(cc).Add(testContext(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&bookiepb.AddRequest{LedgerId: 1, EntryId: 0, Lac: -1, Payload: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if r, err := st.Recv(); err != nil || r.ErrorCode != 0 {
		t.Fatalf("add: %+v %v", r, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Recv returns when the bookie ends the stream (the context bounds it).
	if _, err := st.Recv(); !errcode.IsAnswer(err) || errcode.CodeOf(errcode.FromError(err)) != errcode.Unavailable {
		t.Fatalf("Add stream end on SIGTERM: %v, want the bookie's UNAVAILABLE", err)
	}
	if registered() {
		t.Fatal("the bookie ended its Add streams while still registered: new ensembles could pick it")
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("bookie exited with %v after SIGTERM", waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("bookie did not exit after SIGTERM")
	}
	if registered() {
		t.Fatal("bookie still registered after a clean shutdown")
	}
}

// TestBookieStoppedWhileJoiningEtcdExitsCleanly sends SIGTERM to a bookie
// whose etcd never answers, so the signal lands while it reads the
// cluster id it must check its data directory against: that is a shutdown
// like any other and must exit 0, not report a failure to start.
func TestBookieStoppedWhileJoiningEtcdExitsCleanly(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			select {
			case accepted <- struct{}{}:
			default:
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	cmd := exec.Command(strataBin, "bookie", "--data-dir", t.TempDir(), "--listen", freeAddrs(t, 1)[0],
		"--etcd", silent.Addr().String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// The bookie dials etcd only after the signal handler is installed,
	// and asks it for the cluster id before it opens or serves anything.
	select {
	case <-accepted:
	case <-time.After(30 * time.Second):
		t.Fatal("the bookie never connected to etcd")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("bookie exited with %v after SIGTERM while joining etcd; output:\n%s", err, out.String())
	}
}

// flipState is a read-only state the test turns on and off.
type flipState struct {
	mu      sync.Mutex
	on      bool
	changed chan struct{}
}

func (f *flipState) ReadOnly() (bool, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.on, f.changed
}

func (f *flipState) set(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on = on
	close(f.changed)
	f.changed = make(chan struct{})
}

// A bookie's registration follows its read-only state both ways, against
// a real etcd: new ensembles leave it out while its disk is full and take
// it again once it is not. When its session's lease goes (expired while
// etcd was out of reach; here revoked), it registers again under a new
// one, read-only mark and all.
func TestBookieRegistrationFollowsItsReadOnlyState(t *testing.T) {
	store := metatest.OpenStore(t)
	ctx := testContext(t, time.Minute)
	sess, err := store.NewSession(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	info := metadata.BookieInfo{ID: "b1:3181", Addr: "b1:3181"}
	if err := store.RegisterBookie(ctx, sess, info); err != nil {
		t.Fatal(err)
	}
	state := &flipState{changed: make(chan struct{})}
	kctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		keepBookieRegistration(kctx, store, sess, 10*time.Second, info, state, slog.New(slog.DiscardHandler))
		close(done)
	}()
	defer func() { stop(); <-done }()
	writable := func() int {
		w, err := (metadata.WritableBookies{Store: store}).ListBookies(ctx)
		if err != nil {
			return -1
		}
		return len(w)
	}
	state.set(true)
	waitFor(t, 30*time.Second, "the read-only bookie left out of the writable ones", func() bool { return writable() == 0 })
	state.set(false)
	waitFor(t, 30*time.Second, "the bookie writable again", func() bool { return writable() == 1 })

	state.set(true)
	waitFor(t, 30*time.Second, "the bookie read-only again", func() bool { return writable() == 0 })
	if _, err := store.Client().Revoke(ctx, clientv3.LeaseID(sess.LeaseID())); err != nil {
		t.Fatal(err)
	}
	registeredReadOnly := func() bool {
		bs, err := store.ListBookies(ctx)
		return err == nil && len(bs) == 1 && bs[0].ReadOnly
	}
	waitFor(t, 30*time.Second, "the bookie registered again, read-only, after its lease was revoked", func() bool {
		select {
		case <-sess.Done():
		default:
			return false // the revocation not seen yet
		}
		return registeredReadOnly()
	})
	state.set(false)
	waitFor(t, 30*time.Second, "the re-registered bookie writable again", func() bool { return writable() == 1 })
}
