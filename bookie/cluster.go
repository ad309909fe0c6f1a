package bookie

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-mq/strata/bookie/journal"
)

// clusterFile, in the data directory, holds the instance id of the cluster
// whose metadata the bookie's ledgers belong to (BookKeeper's cookie). A
// bookie started against another cluster's metadata would find none of its
// ledgers there, and the auditor's garbage collection would delete them
// all as leftovers of deleted ledgers; ledger ids of two clusters may also
// collide.
const clusterFile = "CLUSTER_ID"

// ClusterMismatchError is Open's answer when Config.ClusterID is not the
// cluster id recorded in the data directory: the bookie was pointed at
// metadata (an etcd, or a prefix in it) other than its ledgers'.
type ClusterMismatchError struct {
	DataDir  string
	Recorded string // the id in DataDir/CLUSTER_ID
	Cluster  string // Config.ClusterID, the metadata's
}

func (e *ClusterMismatchError) Error() string {
	return fmt.Sprintf("bookie: data directory %s belongs to cluster %s, but the metadata it was given is of cluster %s; "+
		"its ledgers would look deleted there and be garbage collected, so it refuses to start: "+
		"point it at its own cluster's etcd and prefix, or give it an empty data directory to join this cluster as a new bookie",
		e.DataDir, e.Recorded, e.Cluster)
}

// checkCluster refuses a data directory recorded for a cluster other than
// want, and records want in one that has no cluster id yet: a new bookie,
// or one from before cluster ids, which is trusted once. An empty want (a
// bookie with no metadata) checks nothing.
func checkCluster(dir, want string, log *slog.Logger) error {
	if want == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, clusterFile))
	switch {
	case err == nil:
		// Written whole by WriteFileSync, so never empty or torn.
		if got := strings.TrimSuffix(string(data), "\n"); got != want {
			return &ClusterMismatchError{DataDir: dir, Recorded: got, Cluster: want}
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	segs, err := journal.List(filepath.Join(dir, "journal"))
	if err != nil {
		return err
	}
	if err := journal.WriteFileSync(dir, clusterFile, []byte(want+"\n"), 0o644); err != nil {
		return err
	}
	if len(segs) > 0 {
		log.Warn("the data directory holds a journal but no cluster id (written before cluster ids): trusting the metadata's and recording it",
			"cluster_id", want, "data_dir", dir)
	} else {
		log.Info("recorded the cluster id in a new data directory", "cluster_id", want, "data_dir", dir)
	}
	return nil
}
