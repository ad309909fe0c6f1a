package jetstream

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFindServerBinaryFallsBackToTheMakeToolsCache checks that `strata
// loadtest` run by hand from the checkout finds the nats-server that `make
// tools` installed, without STRATA_NATS_BIN or PATH.
func TestFindServerBinaryFallsBackToTheMakeToolsCache(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, ".cache", "bin", "nats-server")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(BinEnv, "")
	t.Setenv("PATH", dir) // no nats-server on it
	t.Chdir(dir)
	got, err := FindServerBinary()
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.EvalSymlinks(bin); mustEval(t, got) != want {
		t.Fatalf("found %q, want %q", got, bin)
	}
}

func mustEval(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
