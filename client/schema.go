package client

import (
	"context"
	"maps"
	"strconv"
	"time"

	"github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Schemas, as Pulsar's schema registry. A topic keeps numbered versions
// of its schema (a partitioned topic's partitions share one). A producer
// opened with ProducerSchema gets the version of an identical schema, or
// adds its own as a new version when the namespace's compatibility
// strategy (NamespacePolicy.SchemaCompatibility, FULL by default) allows;
// otherwise NewProducer fails with ErrIncompatibleSchema. Each message it
// sends then carries that version (Message.SchemaVersion), so a consumer
// can decode it with the schema that wrote it (Admin.GetSchemaVersion). A
// consumer opened with ConsumerSchema must be able to read the topic's
// schema. The payloads themselves are the application's to encode: the
// SDK does not serialize values. For AVRO and JSON, the definition is an
// Avro schema (JSON text), as in Pulsar, and compatibility is Avro's
// schema resolution.
//
// Not done: Pulsar's KEY_VALUE and AUTO_CONSUME schemas, and checking
// protobuf definitions (any PROTOBUF version is compatible with another).

// SchemaType is what a schema's payloads are.
type SchemaType string

// Schema types.
const (
	SchemaBytes    SchemaType = "BYTES"
	SchemaString   SchemaType = "STRING"
	SchemaJSON     SchemaType = "JSON"
	SchemaAvro     SchemaType = "AVRO"
	SchemaProtobuf SchemaType = "PROTOBUF"
)

// Schema describes a topic's payloads.
type Schema struct {
	Type SchemaType `json:"type"`
	// Definition: for AVRO and JSON, an Avro schema (JSON text).
	Definition string            `json:"definition,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
}

func (s *Schema) proto() *servingpb.SchemaInfo {
	if s == nil {
		return nil
	}
	return &servingpb.SchemaInfo{Type: string(s.Type), Definition: s.Definition, Properties: maps.Clone(s.Properties)}
}

// SchemaInfo is one version of a topic's schema.
type SchemaInfo struct {
	Version uint64    `json:"version"`
	Schema  Schema    `json:"schema"`
	Created time.Time `json:"created"`
	// Deleted marks a deletion: the topic had no schema from this version
	// until the next (Schema is then empty).
	Deleted bool `json:"deleted,omitempty"`
}

func schemaInfoFromProto(v *servingpb.VersionedSchema) SchemaInfo {
	s := v.GetSchema()
	return SchemaInfo{Version: v.GetVersion(), Created: time.Unix(0, v.GetCreatedUnixNano()), Deleted: v.GetDeleted(),
		Schema: Schema{Type: SchemaType(s.GetType()), Definition: s.GetDefinition(), Properties: s.GetProperties()}}
}

// ProducerSchema makes the producer declare its payloads' schema (see the
// Schemas comment above).
func ProducerSchema(s Schema) ProducerOption {
	return func(pc *producerConfig) { pc.schema = &s }
}

// ConsumerSchema makes the consumer declare the schema it reads payloads
// with: subscribing fails with ErrIncompatibleSchema when it cannot read
// the topic's.
func ConsumerSchema(s Schema) ConsumerOption {
	return func(c *consumerConfig) { c.schema = &s }
}

// schemaVersionProperty carries a message's schema version between the SDK
// and the node (serving/schema.go); the SDK hides it from Properties.
const schemaVersionProperty = "__strata_schema_version"

// takeSchemaVersion removes the schema version from props and answers it
// (-1: none, or one that does not parse).
func takeSchemaVersion(props map[string]string) (map[string]string, int64) {
	s, ok := props[schemaVersionProperty]
	if !ok {
		return props, -1
	}
	props = maps.Clone(props)
	delete(props, schemaVersionProperty)
	v, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return props, -1
	}
	return props, int64(v)
}

// schemaTopic checks a schema admin call's topic: not a partition.
func schemaTopic(topicName string) (string, error) {
	n, err := topic.Parse(topicName)
	if err != nil {
		return "", err
	}
	if i, parent := n.PartitionIndex(); i >= 0 {
		return "", invalidArg("%s is a partition: schemas belong to %s", n, parent)
	}
	return n.String(), nil
}

// GetSchema answers the latest version of topic's schema (a deletion when
// it was deleted since); an error with code EntryNotFound (CodeOf) when
// it never had one.
func (a *Admin) GetSchema(ctx context.Context, topicName string) (SchemaInfo, error) {
	return a.getSchema(ctx, topicName, nil)
}

// GetSchemaVersion answers one version of topic's schema, as a consumer
// needs to decode a message that carries it.
func (a *Admin) GetSchemaVersion(ctx context.Context, topicName string, version uint64) (SchemaInfo, error) {
	return a.getSchema(ctx, topicName, &version)
}

func (a *Admin) getSchema(ctx context.Context, topicName string, version *uint64) (SchemaInfo, error) {
	name, err := schemaTopic(topicName)
	if err != nil {
		return SchemaInfo{}, err
	}
	var out SchemaInfo
	err = a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.GetSchema(ctx, &servingpb.GetSchemaRequest{Topic: name, Version: version})
		if err == nil {
			out = schemaInfoFromProto(resp.GetSchema())
		}
		return err
	})
	return out, err
}

// ListSchemas answers every version of topic's schema, deletions included,
// oldest first.
func (a *Admin) ListSchemas(ctx context.Context, topicName string) ([]SchemaInfo, error) {
	name, err := schemaTopic(topicName)
	if err != nil {
		return nil, err
	}
	var out []SchemaInfo
	err = a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.ListSchemas(ctx, &servingpb.ListSchemasRequest{Topic: name})
		if err != nil {
			return err
		}
		out = make([]SchemaInfo, 0, len(resp.GetVersions()))
		for _, v := range resp.GetVersions() {
			out = append(out, schemaInfoFromProto(v))
		}
		return nil
	})
	return out, err
}

// CreateSchema adds s as a new version of topic's schema (Pulsar's schemas
// upload), checked against the namespace's compatibility strategy
// (ErrIncompatibleSchema), even where the namespace lets only admins add
// versions; an identical version answers its number. Tenant admins only,
// with authorization.
func (a *Admin) CreateSchema(ctx context.Context, topicName string, s Schema) (uint64, error) {
	name, err := schemaTopic(topicName)
	if err != nil {
		return 0, err
	}
	var v uint64
	err = a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.CreateSchema(ctx, &servingpb.CreateSchemaRequest{Topic: name, Schema: s.proto()})
		v = resp.GetVersion()
		return err
	})
	return v, err
}

// DeleteSchema leaves topic without a schema (it adds a deletion version,
// answered; versions are never reused). Tenant admins only.
func (a *Admin) DeleteSchema(ctx context.Context, topicName string) (uint64, error) {
	name, err := schemaTopic(topicName)
	if err != nil {
		return 0, err
	}
	var v uint64
	err = a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.DeleteSchema(ctx, &servingpb.DeleteSchemaRequest{Topic: name})
		v = resp.GetVersion()
		return err
	})
	return v, err
}

// SchemaCompatibility is whether a schema could be added to a topic.
type SchemaCompatibility struct {
	Compatible bool   `json:"compatible"`
	Reason     string `json:"reason,omitempty"` // why not
	Strategy   string `json:"strategy"`
}

// TestSchemaCompatibility answers whether s could be added as a version of
// topic's schema (or is one already), without adding it.
func (a *Admin) TestSchemaCompatibility(ctx context.Context, topicName string, s Schema) (SchemaCompatibility, error) {
	name, err := schemaTopic(topicName)
	if err != nil {
		return SchemaCompatibility{}, err
	}
	var out SchemaCompatibility
	err = a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.TestSchemaCompatibility(ctx, &servingpb.TestSchemaCompatibilityRequest{Topic: name, Schema: s.proto()})
		out = SchemaCompatibility{Compatible: resp.GetCompatible(), Reason: resp.GetReason(), Strategy: resp.GetStrategy()}
		return err
	})
	return out, err
}
