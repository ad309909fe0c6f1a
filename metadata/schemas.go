package metadata

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/errcode"
)

// Schema is one version of a topic's schema, as Pulsar's SchemaInfo: what
// its messages' payloads are (Type) and, for structured types, their
// definition. Serving decides what is compatible; this file only keeps
// the versions.
type Schema struct {
	Type       string            `json:"type"`
	Definition string            `json:"definition,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	// CreatedUnixNano is when the version was added.
	CreatedUnixNano int64 `json:"created_unix_nano"`
	// Deleted marks a deletion: the topic had no schema from this version
	// until the next. Versions are never reused, so a message's version
	// names the same schema for as long as the message is kept.
	Deleted bool `json:"deleted,omitempty"`
}

// SchemaVersion is one version of a topic's schema with its number (0 is
// the first).
type SchemaVersion struct {
	Version uint64
	Schema  Schema
}

// MaxSchemaVersions bounds the versions one topic may hold.
const MaxSchemaVersions = 100

// checkSchemaTopic accepts a topic that is not a partition: a partitioned
// topic's partitions share its schema.
func checkSchemaTopic(name string) error { return checkPolicyTopic(name) }

// ListSchemas answers every version of topic's schema, deletions included,
// oldest first (none when it never had a schema). The versions go with the
// topic, or its namespace, when deleted.
func (s *Store) ListSchemas(ctx context.Context, topic string) ([]SchemaVersion, error) {
	if err := checkSchemaTopic(topic); err != nil {
		return nil, err
	}
	dir := s.keys.schemas(topic)
	kvs, err := s.list(ctx, "list schemas", dir)
	if err != nil {
		return nil, err
	}
	out := make([]SchemaVersion, 0, len(kvs))
	for _, kv := range kvs {
		v, err := strconv.ParseUint(strings.TrimPrefix(string(kv.Key), dir), 10, 64)
		if err != nil {
			return nil, &errcode.Error{Code: errcode.Corruption, Message: fmt.Sprintf("metadata: schema key %q", kv.Key)}
		}
		var sc Schema
		if err := decode(kv, &sc); err != nil {
			return nil, err
		}
		out = append(out, SchemaVersion{Version: v, Schema: sc})
	}
	return out, nil
}

// AddSchema adds sc as version next of topic's schema, next being the
// number of versions the caller saw: ErrBadVersion when another version
// was added meanwhile (read them again and decide again), and
// InvalidArgument past MaxSchemaVersions.
func (s *Store) AddSchema(ctx context.Context, topic string, next uint64, sc Schema) error {
	if err := checkSchemaTopic(topic); err != nil {
		return err
	}
	if next >= MaxSchemaVersions {
		return errcode.New(errcode.InvalidArgument, "metadata: %s has %d schema versions, the most a topic may hold", topic, next)
	}
	key := s.keys.schema(topic, next)
	val, err := encode(sc)
	if err != nil {
		return err
	}
	cmps := []clientv3.Cmp{versionCmp(key, 0)}
	if next > 0 {
		// The previous version must still be there: had the topic been
		// deleted meanwhile, its numbering starts again.
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(s.keys.schema(topic, next-1)), ">", 0))
	}
	resp, err := s.txn(ctx, "add schema", cmps, []clientv3.Op{clientv3.OpPut(key, val)}, nil)
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return ErrBadVersion
	}
	return nil
}
