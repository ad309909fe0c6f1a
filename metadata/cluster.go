package metadata

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/errcode"
)

// The cluster's instance id, BookKeeper's instanceId. A bookie records it
// in its data directory on first start and refuses metadata with another
// one: a bookie pointed at the wrong etcd or prefix would otherwise find
// none of its ledgers there, and the auditor's garbage collection would
// delete them all as leftovers of deleted ledgers.

// clusterIDBytes is the size of a new cluster id, written in hexadecimal.
const clusterIDBytes = 16

// InitClusterID answers the cluster's instance id, creating a random one
// if the prefix has none yet. Creation is one transaction that writes only
// where the key is absent and otherwise reads it, so stores that race to
// create it all answer the id that won.
func (s *Store) InitClusterID(ctx context.Context) (string, error) {
	var b [clusterIDBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	key := s.keys.clusterID()
	resp, err := s.txn(ctx, "init cluster id", []clientv3.Cmp{versionCmp(key, 0)},
		[]clientv3.Op{clientv3.OpPut(key, hex.EncodeToString(b[:]))}, []clientv3.Op{clientv3.OpGet(key)})
	if err != nil {
		return "", err
	}
	if resp.Succeeded {
		s.log.Info("created the cluster id", "cluster_id", hex.EncodeToString(b[:]))
		return hex.EncodeToString(b[:]), nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 { // the compare and the read see one revision: not reached
		return "", &errcode.Error{Code: errcode.Internal, Message: "metadata: init cluster id: the key exists and reads absent"}
	}
	return checkClusterID(string(kvs[0].Value))
}

// ClusterID reads the cluster's instance id; ErrNotFound if InitClusterID
// never ran under this prefix.
func (s *Store) ClusterID(ctx context.Context) (string, error) {
	kv, err := s.get(ctx, "get cluster id", s.keys.clusterID())
	if err != nil {
		return "", err
	}
	if kv == nil {
		return "", ErrNotFound
	}
	return checkClusterID(string(kv.Value))
}

// checkClusterID refuses an empty stored id: a bookie would record it and
// then match any other cluster that also had one.
func checkClusterID(id string) (string, error) {
	if id == "" {
		return "", &errcode.Error{Code: errcode.Corruption, Message: "metadata: the cluster id is empty"}
	}
	return id, nil
}
