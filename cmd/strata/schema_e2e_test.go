package main

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/strata-mq/strata/client"
)

const (
	orderV1 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}`
	// v2 adds a field with a default: FULL compatible with v1.
	orderV2 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"note","type":"string","default":""}]}`
	// v3 adds a field without a default: it cannot read v1's or v2's.
	orderV3 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"note","type":"string","default":""},{"name":"total","type":"double"}]}`
)

// TestSchemaRegistryEvolvesATopicsSchemaOnARealStandalone: on a real
// standalone, a producer with an Avro schema registers version 0 and its
// messages carry it; one with a compatible evolution adds version 1; a
// consumer decodes every message with the version that wrote it, fetched
// from the registry; an incompatible evolution is refused under the
// default FULL strategy and accepted once the namespace allows it; a
// consumer that cannot read the topic is refused; enforcement refuses
// producers without a schema; with auto-update off only an upload adds a
// version; a deletion leaves the topic without a schema and never reuses a
// version number. The CLI and the REST API see the same registry.
func TestSchemaRegistryEvolvesATopicsSchemaOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	admin := c.Admin()
	cli := cliAt(t, s.url())
	const topic = "public/default/orders"
	avroSchema := func(def string) client.Schema { return client.Schema{Type: client.SchemaAvro, Definition: def} }

	p1, err := c.NewProducer(ctx, topic, client.ProducerSchema(avroSchema(orderV1)))
	if err != nil {
		t.Fatal(err)
	}
	encode := func(def string, v any) []byte {
		t.Helper()
		b, err := avro.Marshal(parseAvro(t, def), v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type order struct {
		ID    int64   `avro:"id"`
		Note  string  `avro:"note"`
		Total float64 `avro:"total"`
	}
	if _, err := p1.Send(ctx, &client.ProducerMessage{Payload: encode(orderV1, order{ID: 1})}); err != nil {
		t.Fatal(err)
	}
	p2, err := c.NewProducer(ctx, topic, client.ProducerSchema(avroSchema(orderV2)))
	if err != nil {
		t.Fatalf("a FULL-compatible evolution: %v", err)
	}
	if _, err := p2.Send(ctx, &client.ProducerMessage{Payload: encode(orderV2, order{ID: 2, Note: "gift"}), Properties: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewProducer(ctx, topic, client.ProducerSchema(avroSchema(orderV3))); !errors.Is(err, client.ErrIncompatibleSchema) {
		t.Fatalf("an evolution that cannot read the old messages: %v, want ErrIncompatibleSchema", err)
	}

	// A consumer reads each message with the schema that wrote it.
	cons, err := c.Subscribe(ctx, topic, "audit", client.ConsumerInitialPosition(client.Earliest), client.ConsumerSchema(avroSchema(orderV2)))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []order{{ID: 1}, {ID: 2, Note: "gift"}} {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.SchemaVersion != int64(i) {
			t.Fatalf("message %d carries schema version %d, want %d", i, m.SchemaVersion, i)
		}
		if _, hidden := m.Properties["__strata_schema_version"]; hidden || (i == 1 && m.Properties["k"] != "v") {
			t.Fatalf("message %d properties %v", i, m.Properties)
		}
		writer, err := admin.GetSchemaVersion(ctx, topic, uint64(m.SchemaVersion))
		if err != nil {
			t.Fatal(err)
		}
		var got order
		if err := avro.Unmarshal(parseAvro(t, writer.Schema.Definition), m.Payload, &got); err != nil {
			t.Fatalf("decoding message %d with its writer's schema: %v", i, err)
		}
		if got != want {
			t.Fatalf("message %d decoded as %+v, want %+v", i, got, want)
		}
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	cons.Close()
	if _, err := c.Subscribe(ctx, topic, "text", client.ConsumerSchema(client.Schema{Type: client.SchemaString})); !errors.Is(err, client.ErrIncompatibleSchema) {
		t.Fatalf("a STRING consumer of an AVRO topic: %v, want ErrIncompatibleSchema", err)
	}

	// The namespace decides: ALWAYS_COMPATIBLE takes v3 (once the owner
	// has the new policy: it watches policies).
	cli("", "namespaces", "set-policy", "public/default", "--schema-compatibility", "always_compatible")
	waitFor(t, 30*time.Second, "v3 under ALWAYS_COMPATIBLE", func() bool {
		_, err := c.NewProducer(ctx, topic, client.ProducerSchema(avroSchema(orderV3)))
		return err == nil
	})
	// Enforcement refuses a producer without a schema.
	if _, err := c.NewProducer(ctx, topic); err != nil {
		t.Fatalf("a producer without a schema, not enforced: %v", err)
	}
	cli("", "namespaces", "set-policy", "public/default", "--schema-validation-enforced", "--schema-auto-update=false")
	waitFor(t, 30*time.Second, "a producer without a schema refused", func() bool {
		_, err := c.NewProducer(ctx, topic)
		return errors.Is(err, client.ErrIncompatibleSchema)
	})
	// Auto-update off: a producer's new schema is refused, an upload is not.
	v4 := strings.Replace(orderV3, `"type":"double"`, `"type":"double","default":0`, 1)
	if _, err := c.NewProducer(ctx, topic, client.ProducerSchema(avroSchema(v4))); !errors.Is(err, client.ErrIncompatibleSchema) {
		t.Fatalf("a new schema with auto-update off: %v, want ErrIncompatibleSchema", err)
	}
	def := filepath.Join(t.TempDir(), "order.avsc")
	if err := os.WriteFile(def, []byte(v4), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := cli("", "schemas", "upload", topic, "--type", "avro", "--file", def); strings.TrimSpace(out) != "schema version 3" {
		t.Fatalf("schemas upload printed %q", out)
	}
	if _, err := c.NewProducer(ctx, topic, client.ProducerSchema(avroSchema(v4))); err != nil {
		t.Fatalf("the uploaded schema: %v", err)
	}
	if _, _, err := run(t, "", "schemas", "compatibility", topic, "--type", "string", "--url", s.url()); err != nil {
		t.Fatalf("ALWAYS_COMPATIBLE refused a STRING schema: %v", err)
	}

	// Deleted: no schema, producers without one pass, numbers go on.
	if out := cli("", "schemas", "delete", topic); strings.TrimSpace(out) != "schema deleted (version 4)" {
		t.Fatalf("schemas delete printed %q", out)
	}
	if _, err := c.NewProducer(ctx, topic); err != nil {
		t.Fatalf("a producer without a schema after the deletion: %v", err)
	}
	cli("", "namespaces", "set-policy", "public/default", "--schema-auto-update=true")
	waitFor(t, 30*time.Second, "a producer adding a version again", func() bool {
		_, err := c.NewProducer(ctx, topic, client.ProducerSchema(avroSchema(orderV1)))
		return err == nil
	})
	all, err := admin.ListSchemas(ctx, topic)
	if err != nil || len(all) != 6 || !all[4].Deleted || all[5].Version != 5 || all[5].Schema.Definition != orderV1 {
		t.Fatalf("versions after the deletion: %+v, %v", all, err)
	}

	// The REST API answers the same registry.
	api := restCaller{t: t, web: http.DefaultClient, base: "http://" + s.http}
	var latest client.SchemaInfo
	api.want(http.StatusOK, "GET", "/admin/v2/schemas/public/default/orders/schema", "", &latest)
	if latest.Version != 5 || latest.Schema.Type != client.SchemaAvro {
		t.Fatalf("REST latest schema: %+v", latest)
	}
	api.wantError(http.StatusNotFound, "ENTRY_NOT_FOUND", "GET", "/admin/v2/schemas/public/default/orders/schema/99", "")
	api.wantError(http.StatusBadRequest, "INVALID_ARGUMENT", "POST", "/admin/v2/schemas/public/default/orders/schema", `{"type":"AVRO","definition":"{"}`)
	var compat client.SchemaCompatibility
	api.want(http.StatusOK, "POST", "/admin/v2/schemas/public/default/orders/compatibility", `{"type":"STRING"}`, &compat)
	if !compat.Compatible || compat.Strategy != "ALWAYS_COMPATIBLE" {
		t.Fatalf("REST compatibility: %+v", compat)
	}
}

// TestAForgedSchemaVersionIsRefused: the node refuses a batch whose
// messages claim a schema version other than their producer's, so a
// message's version can be trusted.
func TestAForgedSchemaVersionIsRefused(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client()
	p, err := c.NewProducer(ctx, "forged")
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Send(ctx, &client.ProducerMessage{Payload: []byte("x"), Properties: map[string]string{"__strata_schema_version": "0"}})
	if !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("a message claiming a schema version from a producer without one: %v, want ErrInvalidArgument", err)
	}
}

// parseAvro parses def in a cache of its own: the library's shared cache
// would answer the first version of a record for every later one.
func parseAvro(t *testing.T, def string) avro.Schema {
	t.Helper()
	s, err := avro.ParseWithCache(def, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
