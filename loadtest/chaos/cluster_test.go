package chaos

import (
	"context"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeNodeEnv makes the test binary act as a cluster process: it answers
// GET /readyz on the address after --http-addr until killed.
const fakeNodeEnv = "STRATA_CHAOS_FAKE_NODE"

func TestMain(m *testing.M) {
	if os.Getenv(fakeNodeEnv) == "1" {
		runFakeNode(os.Args[1:])
		return
	}
	os.Exit(m.Run())
}

func runFakeNode(args []string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	for i, a := range args {
		// serving nodes answer on --http-addr, bookies listen on --listen.
		if (a == "--http-addr" || a == "--listen") && i+1 < len(args) {
			_ = http.ListenAndServe(args[i+1], mux)
		}
	}
	os.Exit(2)
}

func TestClusterConfigRejectsImpossibleQuorums(t *testing.T) {
	for _, c := range []ClusterConfig{
		{Exe: "x", Bookies: 2},                                // E=3 > 2 bookies
		{Exe: "x", Ensemble: 3, WriteQuorum: 2, AckQuorum: 3}, // Qa > Qw
		{Exe: "x", Serving: 17},
	} {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestDefaultCommandLinesCarryAddressesAndQuorums(t *testing.T) {
	a := NodeAddrs{Addr: "127.0.0.1:1", HTTP: "127.0.0.1:2", DataDir: "/d", Etcd: "http://127.0.0.1:3"}
	c, _ := ClusterConfig{Exe: "x"}.withDefaults()
	serve := strings.Join(DefaultServeArgs(a, c), " ")
	for _, want := range []string{"serve", "--etcd http://127.0.0.1:3", "--grpc-addr 127.0.0.1:1", "--ensemble 3", "--write-quorum 3", "--ack-quorum 2"} {
		if !strings.Contains(serve, want) {
			t.Errorf("serve args %q lack %q", serve, want)
		}
	}
	if b := strings.Join(DefaultBookieArgs(a), " "); !strings.Contains(b, "bookie --data-dir /d") {
		t.Errorf("bookie args %q", b)
	}
}

// TestLocalClusterSurvivesASchedule starts a cluster of fake nodes (this
// test binary) with a real embedded etcd, applies a kill and a pause, and
// checks every process is ready again, restarted only when killed, and gone
// after Close.
func TestLocalClusterSurvivesASchedule(t *testing.T) {
	t.Setenv(fakeNodeEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	c, err := StartLocalCluster(ctx, ClusterConfig{Exe: exe})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = c.Close()
		}
	})
	if got := strings.Count(c.URL(), ","); got != 1 || !strings.HasPrefix(c.URL(), "strata://127.0.0.1:") {
		t.Fatalf("URL %q, want two serving nodes", c.URL())
	}
	steps, err := Plan(mustParse(t, "kill-bookie-1@0s/100ms,pause-serving@50ms/100ms"), c.Counts(), 7, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range Apply(ctx, time.Now(), steps, c.Targets(), nil) {
		if a.Err != nil {
			t.Fatalf("%v: %v", a.Step, a.Err)
		}
	}
	if err := c.WaitAllReady(ctx); err != nil {
		t.Fatal(err)
	}
	// The killed bookie was registered again on restart.
	if bs, err := c.store.ListBookies(ctx); err != nil || len(bs) != 3 {
		t.Fatalf("registered bookies %v (%v), want 3", bs, err)
	}
	var pids []int
	for _, p := range append(c.bookies, c.serving...) {
		want := 1
		if p.Name() == "bookie-1" {
			want = 2
		}
		if p.Starts() != want {
			t.Errorf("%s started %d times, want %d", p.Name(), p.Starts(), want)
		}
		pids = append(pids, p.Pid())
	}
	closed = true
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("pid %d survived Close", pid)
		}
	}
}

func TestKilledBookieIsDeregisteredUntilRestart(t *testing.T) {
	t.Setenv(fakeNodeEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	c, err := StartLocalCluster(ctx, ClusterConfig{Exe: exe, Bookies: 1, Serving: 1, Ensemble: 1, WriteQuorum: 1, AckQuorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	target := c.Targets()["bookie-0"]
	count := func() int {
		bs, err := c.store.ListBookies(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(bs)
	}
	if count() != 1 {
		t.Fatal("bookie not registered at start")
	}
	if err := target.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if count() != 0 {
		t.Fatal("killed bookie still registered")
	}
	if err := target.Restart(); err != nil {
		t.Fatal(err)
	}
	if count() != 1 {
		t.Fatal("restarted bookie not registered again")
	}
}
