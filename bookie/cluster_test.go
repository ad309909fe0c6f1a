package bookie

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDataDirOfOneClusterRefusesAnotherClustersMetadata: a bookie whose data
// directory recorded cluster A does not open for cluster B, with a
// *ClusterMismatchError naming both ids, and leaves the directory as it
// was: still A's, its ledgers readable for A.
func TestDataDirOfOneClusterRefusesAnotherClustersMetadata(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.ClusterID = "aaaa"
	b := openBookie(t, cfg)
	mustAdd(t, b, 1, 0, -1, 100)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.ClusterID = "bbbb"
	r, err := Open(other, testLogger(t))
	var mismatch *ClusterMismatchError
	if !errors.As(err, &mismatch) {
		if r != nil {
			r.Close()
		}
		t.Fatalf("open for cluster bbbb of a directory of aaaa: %v, want a *ClusterMismatchError", err)
	}
	if mismatch.Recorded != "aaaa" || mismatch.Cluster != "bbbb" ||
		!strings.Contains(err.Error(), "aaaa") || !strings.Contains(err.Error(), "bbbb") {
		t.Fatalf("mismatch error %+v (%q): want recorded aaaa, cluster bbbb, both named", mismatch, err)
	}
	b = openBookie(t, cfg)
	mustRead(t, b, 1, 0, 100)
}

// TestFreshDataDirRecordsTheClusterIDAndKeepsItAcrossRestarts: a new
// bookie records the cluster id it was given, durably, and a restart with
// the same id opens (the file is kept, not rewritten into another).
func TestFreshDataDirRecordsTheClusterIDAndKeepsItAcrossRestarts(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.ClusterID = "0123456789abcdef0123456789abcdef"
	b := openBookie(t, cfg)
	readID := func() string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(cfg.DataDir, clusterFile))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if got := readID(); got != cfg.ClusterID+"\n" {
		t.Fatalf("%s = %q, want %q", clusterFile, got, cfg.ClusterID+"\n")
	}
	mustAdd(t, b, 1, 0, -1, 100)
	b = reopen(t, b, false)
	mustRead(t, b, 1, 0, 100)
	if got := readID(); got != cfg.ClusterID+"\n" {
		t.Fatalf("%s after a restart = %q, want %q", clusterFile, got, cfg.ClusterID+"\n")
	}
}

// TestDataDirWithoutClusterIDIsTrustedOnceThenBound: a data directory from
// before cluster ids (a journal, no CLUSTER_ID) joins the first cluster it
// is given and refuses any other afterwards; a bookie given no cluster id
// (no metadata) opens whatever is recorded.
func TestDataDirWithoutClusterIDIsTrustedOnceThenBound(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := openBookie(t, cfg) // no cluster id: as before this check existed
	mustAdd(t, b, 1, 0, -1, 100)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, clusterFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a bookie without a cluster id wrote %s: %v", clusterFile, err)
	}
	cfg.ClusterID = "aaaa"
	b = openBookie(t, cfg)
	mustRead(t, b, 1, 0, 100)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.ClusterID = "bbbb"
	if r, err := Open(other, testLogger(t)); !errors.As(err, new(*ClusterMismatchError)) {
		if r != nil {
			r.Close()
		}
		t.Fatalf("open for bbbb after the directory took aaaa: %v, want a *ClusterMismatchError", err)
	}
	other.ClusterID = ""
	b = openBookie(t, other)
	mustRead(t, b, 1, 0, 100)
}
