package serving

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Schemas, as Pulsar's schema registry. A topic (a partitioned topic's
// partitions share their topic's) keeps numbered versions of its schema in
// etcd (metadata.Schema): a type (BYTES, STRING, JSON, AVRO, PROTOBUF)
// and, for JSON and AVRO, an Avro schema definition.
//
// A producer that opens with a schema gets the version of an identical
// one, or adds its schema as a new version when the namespace's
// compatibility strategy allows it and SchemaAutoUpdateDisabled does not
// forbid it; otherwise the open fails with INCOMPATIBLE_SCHEMA. Its
// messages then carry that version (the SDK sets schemaVersionProperty on
// each, and the node refuses a batch whose messages do not carry exactly
// the producer's). A producer without a schema may write to a topic that
// has one unless the namespace enforces schemas. A consumer that
// subscribes with a schema must be able to read the topic's latest version
// (every version, for the _TRANSITIVE strategies); it adds no version.
//
// Compatibility is Avro's schema resolution (github.com/hamba/avro) for
// JSON and AVRO: BACKWARD means the new schema reads what the previous one
// wrote, FORWARD the reverse, FULL both; the _TRANSITIVE strategies check
// every version since the last deletion, the others only the latest.
// STRING, BYTES and PROTOBUF carry no definition that is checked: any
// version of the same type is compatible. A change of type never is
// (except under ALWAYS_COMPATIBLE).
//
// Deleting a topic's schema adds a deletion version, so that version
// numbers are never reused while messages that carry them may be kept.

// schemaVersionProperty is the message property holding the schema version
// a message was written with, in decimal. The SDK sets and strips it.
const schemaVersionProperty = "__strata_schema_version"

// Schema types.
const (
	schemaBytes    = "BYTES"
	schemaString   = "STRING"
	schemaJSON     = "JSON"
	schemaAvro     = "AVRO"
	schemaProtobuf = "PROTOBUF"
)

// Limits on a schema.
const (
	maxSchemaDefinitionBytes = 64 << 10
	maxSchemaProperties      = 64
)

// schemaStrategy answers a policy's compatibility strategy: FULL, Pulsar's
// default, when it names none.
func schemaStrategy(s string) string { return cmp.Or(s, "FULL") }

// normalizeSchema answers info with its type upper-cased, or nil for no
// schema (unset, empty or BYTES without a definition), after checking it:
// a known type, a definition that parses for JSON and AVRO, bounded sizes.
func normalizeSchema(info *servingpb.SchemaInfo) (*metadata.Schema, error) {
	if info == nil {
		return nil, nil
	}
	typ := strings.ToUpper(strings.TrimSpace(info.GetType()))
	if typ == "" || typ == "NONE" || (typ == schemaBytes && info.GetDefinition() == "" && len(info.GetProperties()) == 0) {
		return nil, nil
	}
	switch typ {
	case schemaBytes, schemaString, schemaJSON, schemaAvro, schemaProtobuf:
	default:
		return nil, errcode.New(errcode.InvalidArgument, "schema type %q: want BYTES, STRING, JSON, AVRO or PROTOBUF", info.GetType())
	}
	if len(info.GetDefinition()) > maxSchemaDefinitionBytes {
		return nil, errcode.New(errcode.InvalidArgument, "schema definition of %d bytes: the limit is %d", len(info.GetDefinition()), maxSchemaDefinitionBytes)
	}
	if len(info.GetProperties()) > maxSchemaProperties {
		return nil, errcode.New(errcode.InvalidArgument, "%d schema properties: the limit is %d", len(info.GetProperties()), maxSchemaProperties)
	}
	sc := &metadata.Schema{Type: typ, Definition: info.GetDefinition(), Properties: maps.Clone(info.GetProperties())}
	if typ == schemaJSON || typ == schemaAvro {
		if _, err := parseAvro(sc.Definition); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// parseAvro parses an Avro definition in a cache of its own: the library's
// shared cache would answer an earlier version of a named record.
func parseAvro(def string) (avro.Schema, error) {
	s, err := avro.ParseWithCache(def, "", &avro.SchemaCache{})
	if err != nil {
		return nil, errcode.New(errcode.InvalidArgument, "schema definition is not an Avro schema: %v", err)
	}
	return s, nil
}

// sameSchema reports whether a and b are the same schema: type and
// definition, a JSON definition compared as JSON (spacing and key order
// aside). Not by Avro's Parsing Canonical Form, which drops the defaults
// that decide compatibility; and not by properties, which compatibility
// does not look at, so that changing them cannot add versions without end
// (a version keeps the properties it was added with).
func sameSchema(a, b metadata.Schema) bool {
	if a.Type != b.Type {
		return false
	}
	if a.Definition == b.Definition {
		return true
	}
	ja, ok1 := normalJSON(a.Definition)
	jb, ok2 := normalJSON(b.Definition)
	return ok1 && ok2 && ja == jb
}

// normalJSON re-encodes a JSON text with sorted keys and no spacing.
func normalJSON(s string) (string, bool) {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return "", false
	}
	b, err := json.Marshal(v)
	return string(b), err == nil
}

// activeSchemas answers the versions since the last deletion.
func activeSchemas(all []metadata.SchemaVersion) []metadata.SchemaVersion {
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Schema.Deleted {
			return all[i+1:]
		}
	}
	return all
}

// canRead answers nil when a schema reader decodes what writer wrote.
func canRead(reader, writer metadata.Schema) error {
	if reader.Type != writer.Type {
		return fmt.Errorf("type %s cannot read type %s", reader.Type, writer.Type)
	}
	if reader.Type != schemaJSON && reader.Type != schemaAvro {
		return nil
	}
	r, err := parseAvro(reader.Definition)
	if err != nil {
		return err
	}
	w, err := parseAvro(writer.Definition)
	if err != nil {
		return err
	}
	return avro.NewSchemaCompatibility().Compatible(r, w)
}

// checkNewVersion answers nil when cand may follow the active versions
// under strategy, else why not.
func checkNewVersion(strategy string, active []metadata.SchemaVersion, cand metadata.Schema) error {
	strategy = schemaStrategy(strategy)
	if len(active) == 0 || strategy == "ALWAYS_COMPATIBLE" {
		return nil
	}
	if strategy == "ALWAYS_INCOMPATIBLE" {
		return errors.New("the strategy ALWAYS_INCOMPATIBLE allows no new version")
	}
	against := active[len(active)-1:]
	if strings.HasSuffix(strategy, "_TRANSITIVE") {
		against = active
	}
	mode := strings.TrimSuffix(strategy, "_TRANSITIVE")
	for _, v := range against {
		if mode == "BACKWARD" || mode == "FULL" {
			if err := canRead(cand, v.Schema); err != nil {
				return fmt.Errorf("%s: the new schema cannot read version %d: %v", strategy, v.Version, err)
			}
		}
		if mode == "FORWARD" || mode == "FULL" {
			if err := canRead(v.Schema, cand); err != nil {
				return fmt.Errorf("%s: version %d cannot read the new schema: %v", strategy, v.Version, err)
			}
		}
	}
	return nil
}

// checkReader answers nil when a consumer's schema reads the topic's
// messages: the latest version (every active one for _TRANSITIVE).
func checkReader(strategy string, active []metadata.SchemaVersion, reader metadata.Schema) error {
	strategy = schemaStrategy(strategy)
	if len(active) == 0 || strategy == "ALWAYS_COMPATIBLE" {
		return nil
	}
	against := active[len(active)-1:]
	if strings.HasSuffix(strategy, "_TRANSITIVE") {
		against = active
	}
	for _, v := range against {
		if sameSchema(reader, v.Schema) {
			continue
		}
		if strategy == "ALWAYS_INCOMPATIBLE" {
			return fmt.Errorf("ALWAYS_INCOMPATIBLE: the schema is not version %d", v.Version)
		}
		if err := canRead(reader, v.Schema); err != nil {
			return fmt.Errorf("%s: the consumer's schema cannot read version %d: %v", strategy, v.Version, err)
		}
	}
	return nil
}

// schemaTopic answers the topic whose schema name uses: a partition's is
// its partitioned topic's.
func schemaTopic(name string) (string, string, error) {
	n, err := canonical(name)
	if err != nil {
		return "", "", err
	}
	if i, parent := n.PartitionIndex(); i >= 0 {
		n = parent
	}
	return n.String(), n.NamespaceName(), nil
}

func incompatible(format string, args ...any) error {
	return errcode.New(errcode.IncompatibleSchema, format, args...)
}

// producerSchema answers the schema version a producer of topic with info
// writes (nil: none), adding info as a new version when pol allows; admin
// adds it even when pol disables producers' updates. A producer without a
// schema in a namespace that does not enforce schemas reads nothing.
func (n *Node) producerSchema(ctx context.Context, topic string, info *servingpb.SchemaInfo, pol metadata.NamespacePolicy, admin bool) (*uint64, error) {
	sc, err := normalizeSchema(info)
	if err != nil {
		return nil, err
	}
	if sc == nil && !pol.SchemaValidationEnforced {
		return nil, nil
	}
	name, _, err := schemaTopic(topic)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		all, err := n.listSchemas(ctx, name, attempt > 0)
		if err != nil {
			return nil, unavailable("reading schemas", err)
		}
		active := activeSchemas(all)
		if sc == nil {
			if pol.SchemaValidationEnforced && len(active) > 0 {
				if attempt == 0 {
					continue // refuse only on what etcd holds now
				}
				return nil, incompatible("topic %s has a schema (version %d) and its namespace enforces schemas: a producer needs one", name, active[len(active)-1].Version)
			}
			return nil, nil
		}
		for i := len(active) - 1; i >= 0; i-- {
			if sameSchema(*sc, active[i].Schema) {
				v := active[i].Version
				return &v, nil
			}
		}
		if attempt == 0 {
			// Before adding or refusing, read afresh: the cache may
			// miss a version another node added.
			continue
		}
		if pol.SchemaAutoUpdateDisabled && !admin {
			return nil, incompatible("topic %s: its namespace lets only admins add schema versions (strata schemas upload)", name)
		}
		if err := checkNewVersion(pol.SchemaCompatibility, active, *sc); err != nil {
			return nil, incompatible("topic %s: %v", name, err)
		}
		next := uint64(len(all))
		sc.CreatedUnixNano = time.Now().UnixNano()
		err = n.meta.AddSchema(ctx, name, next, *sc)
		n.schemas.forget(schemasKey(name))
		switch {
		case err == nil:
			n.log.Info("schema version added", "topic", name, "version", next, "type", sc.Type)
			return &next, nil
		case errors.Is(err, metadata.ErrBadVersion) && attempt < 4:
			continue // another version was added meanwhile: decide again
		default:
			return nil, unavailable("adding a schema version", err)
		}
	}
}

// schemaCacheTTL is how long a node keeps a topic's schema versions: a
// version added or deleted at another node may go unseen here for that
// long by what the cache alone decides (a producer finding its version,
// a consumer's check passing); refusals and additions read afresh.
const schemaCacheTTL = time.Second

// listSchemas answers topic's versions, from the cache unless fresh.
func (n *Node) listSchemas(ctx context.Context, topic string, fresh bool) ([]metadata.SchemaVersion, error) {
	if fresh {
		n.schemas.forget(schemasKey(topic))
	}
	return n.schemas.schemas(ctx, topic)
}

// consumerSchema checks that a consumer with info can read topic under
// pol.
func (n *Node) consumerSchema(ctx context.Context, topic string, info *servingpb.SchemaInfo, pol metadata.NamespacePolicy) error {
	sc, err := normalizeSchema(info)
	if err != nil || sc == nil {
		return err
	}
	name, _, err := schemaTopic(topic)
	if err != nil {
		return err
	}
	for fresh := false; ; fresh = true {
		all, err := n.listSchemas(ctx, name, fresh)
		if err != nil {
			return unavailable("reading schemas", err)
		}
		err = checkReader(pol.SchemaCompatibility, activeSchemas(all), *sc)
		if err == nil {
			return nil
		}
		if fresh {
			return incompatible("topic %s: %v", name, err)
		}
		// Refuse only on what etcd holds now.
	}
}

// schemaVersionOf checks that a message of a producer's batch carries the
// producer's schema version, want in decimal ("" when it has none).
func schemaVersionOf(want string, props map[string]string) error {
	got, has := props[schemaVersionProperty]
	switch {
	case want == "" && !has:
		return nil
	case want == "":
		return errcode.New(errcode.InvalidArgument, "a message carries schema version %q but its producer has no schema", got)
	case got != want:
		return errcode.New(errcode.InvalidArgument, "a message carries schema version %q, its producer's is %s", got, want)
	}
	return nil
}

// checkSchemaAdminTopic answers the canonical name of a schema admin
// call's topic, which must not be a partition (partitions share their
// topic's schema).
func checkSchemaAdminTopic(raw string) (string, error) {
	n, err := canonical(raw)
	if err != nil {
		return "", err
	}
	if i, parent := n.PartitionIndex(); i >= 0 {
		return "", errcode.New(errcode.InvalidArgument, "%s is a partition: schemas belong to %s", n, parent)
	}
	return n.String(), nil
}
