package main

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mq/strata/metadata/metatest"
)

// TestBookieWithEtcdRegistersAndDeregistersOnShutdown runs `strata bookie
// --etcd` as a process against a real embedded etcd: serving nodes can only
// choose a bookie that is registered, and must stop choosing it once it is
// gone.
func TestBookieWithEtcdRegistersAndDeregistersOnShutdown(t *testing.T) {
	store := metatest.OpenStore(t)
	endpoints := store.Client().Endpoints()
	addr := freeAddrs(t, 1)[0]
	cmd := exec.Command(strataBin, "bookie", "--data-dir", t.TempDir(), "--listen", addr,
		"--etcd", endpoints[0], "--lease-ttl", "2s")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
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
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("bookie exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("bookie did not exit after SIGTERM")
	}
	exited <- nil // for the cleanup
	if registered() {
		t.Fatal("bookie still registered after a clean shutdown")
	}
}
