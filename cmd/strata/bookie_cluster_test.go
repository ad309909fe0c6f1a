package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

// TestBookieRefusesToStartAgainstAnotherClustersMetadata starts `strata
// bookie` against etcd prefix /a, stops it, and starts it on the same data
// directory against prefix /b (another cluster, as a wrong --etcd-prefix
// or etcd would be): it must exit non-zero naming both cluster ids, and
// never register under /b, where the garbage collection would take its
// ledgers for deleted ones. Started against /a again, it serves.
func TestBookieRefusesToStartAgainstAnotherClustersMetadata(t *testing.T) {
	endpoints := metatest.StartEtcd(t)
	dir := t.TempDir()
	a, b := openPrefix(t, endpoints, "/a"), openPrefix(t, endpoints, "/b")

	first := startBookieProcess(t, dir, endpoints[0], "/a")
	waitFor(t, 30*time.Second, "the bookie registered under /a", func() bool { return registeredBookies(t, a) == 1 })
	first.stop(t)
	idA, err := a.ClusterID(testContext(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}

	second := startBookieProcess(t, dir, endpoints[0], "/b")
	err = second.wait(t, 30*time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("bookie of cluster /a started against /b exited with %v, want a non-zero exit; output:\n%s", err, second.out.String())
	}
	idB, err := b.ClusterID(testContext(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if out := second.out.String(); !strings.Contains(out, "belongs to cluster "+idA) || !strings.Contains(out, idB) {
		t.Fatalf("refusal does not name the data directory's cluster %s and the metadata's %s:\n%s", idA, idB, out)
	}
	if n := registeredBookies(t, b); n != 0 {
		t.Fatalf("%d bookies registered under /b after the refusal", n)
	}

	again := startBookieProcess(t, dir, endpoints[0], "/a")
	waitFor(t, 30*time.Second, "the bookie registered under /a again", func() bool { return registeredBookies(t, a) == 1 })
	again.stop(t)
}

func openPrefix(t *testing.T, endpoints []string, prefix string) *metadata.Store {
	t.Helper()
	s, err := metadata.Open(testContext(t, 30*time.Second), metadata.Config{Endpoints: endpoints, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func registeredBookies(t *testing.T, s *metadata.Store) int {
	bs, err := s.ListBookies(testContext(t, 5*time.Second))
	if err != nil {
		return -1
	}
	return len(bs)
}

// bookieProcess is a `strata bookie` process and its combined output.
type bookieProcess struct {
	cmd     *exec.Cmd
	out     *bytes.Buffer // read only once exited is closed
	exited  chan struct{}
	waitErr error
}

func startBookieProcess(t *testing.T, dir, etcd, prefix string) *bookieProcess {
	t.Helper()
	p := &bookieProcess{out: new(bytes.Buffer), exited: make(chan struct{})}
	p.cmd = exec.Command(strataBin, "bookie", "--data-dir", dir, "--listen", freeAddrs(t, 1)[0],
		"--etcd", etcd, "--etcd-prefix", prefix, "--lease-ttl", "2s")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("bookie --etcd-prefix %s output:\n%s", prefix, p.out.String())
		}
	})
	return p
}

// wait waits up to d for the process to exit and answers how it did.
func (p *bookieProcess) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(d):
		t.Fatalf("bookie still running after %v", d)
		return context.DeadlineExceeded
	}
}

// stop sends SIGTERM and requires a clean exit.
func (p *bookieProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Fatalf("bookie exited with %v after SIGTERM", err)
	}
}
