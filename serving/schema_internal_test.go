package serving

import (
	"strings"
	"testing"

	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Versions of one Avro record as it evolves.
const (
	userV1 = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}`
	// v2 adds a field with a default: readable both ways.
	userV2 = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0}]}`
	// v3 adds a field without a default: it cannot read v1's and v2's
	// messages, which lack it.
	userV3 = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0},{"name":"email","type":"string"}]}`
	// v4 drops "name", which has no default: readers of v1..v3 cannot
	// read it.
	userV4 = `{"type":"record","name":"User","fields":[{"name":"age","type":"int","default":0}]}`
)

func avroVersions(defs ...string) []metadata.SchemaVersion {
	out := make([]metadata.SchemaVersion, len(defs))
	for i, d := range defs {
		out[i] = metadata.SchemaVersion{Version: uint64(i), Schema: metadata.Schema{Type: schemaAvro, Definition: d}}
	}
	return out
}

func avroOf(def string) metadata.Schema { return metadata.Schema{Type: schemaAvro, Definition: def} }

func TestCheckNewVersionFollowsEachStrategy(t *testing.T) {
	for _, tc := range []struct {
		strategy string
		history  []metadata.SchemaVersion
		cand     metadata.Schema
		ok       bool
	}{
		{"", avroVersions(userV1), avroOf(userV2), true}, // "" is FULL
		{"FULL", avroVersions(userV1), avroOf(userV3), false},
		{"BACKWARD", avroVersions(userV1), avroOf(userV3), false}, // v3 cannot read v1
		{"FORWARD", avroVersions(userV1), avroOf(userV3), true},   // v1 reads v3, ignoring the new fields
		{"BACKWARD", avroVersions(userV1), avroOf(userV4), true},  // v4 reads v1, age defaults
		{"FORWARD", avroVersions(userV1), avroOf(userV4), false},  // v1 cannot read v4: no name
		{"FULL", avroVersions(userV1, userV2), avroOf(userV4), false},
		{"ALWAYS_COMPATIBLE", avroVersions(userV1), avroOf(userV4), true},
		{"ALWAYS_INCOMPATIBLE", avroVersions(userV1), avroOf(userV2), false},
		{"ALWAYS_INCOMPATIBLE", nil, avroOf(userV1), true}, // the first version is always allowed
		// Only the latest version counts, unless transitive: v2 → v4 is
		// backward compatible, v1 → v4 too; v3 → v4 forward is not, but
		// with history [v3, v2] FORWARD against the latest (v2) passes.
		{"FORWARD", avroVersions(userV3, userV2), avroOf(userV1), true},
		{"FORWARD_TRANSITIVE", avroVersions(userV3, userV2), avroOf(userV1), false}, // v3 cannot read v1
		{"FULL", []metadata.SchemaVersion{{Schema: metadata.Schema{Type: schemaString}}}, avroOf(userV1), false},
		{"FULL", []metadata.SchemaVersion{{Schema: metadata.Schema{Type: schemaString}}}, metadata.Schema{Type: schemaString}, true},
	} {
		err := checkNewVersion(tc.strategy, tc.history, tc.cand)
		if (err == nil) != tc.ok {
			t.Errorf("%s, %d versions: %v, want ok=%v", tc.strategy, len(tc.history), err, tc.ok)
		}
	}
}

func TestCheckReaderNeedsToReadTheLatestVersion(t *testing.T) {
	if err := checkReader("FULL", avroVersions(userV1, userV2), avroOf(userV1)); err != nil {
		t.Errorf("v1 reads v2 (the new field is ignored): %v", err)
	}
	if err := checkReader("FULL", avroVersions(userV1, userV2), avroOf(userV3)); err == nil {
		t.Error("v3 (email without a default) read v2")
	}
	if err := checkReader("FULL", avroVersions(userV1), metadata.Schema{Type: schemaString}); err == nil {
		t.Error("a STRING consumer was allowed on an AVRO topic")
	}
	if err := checkReader("FULL", nil, avroOf(userV3)); err != nil {
		t.Errorf("a topic without a schema refused a consumer's: %v", err)
	}
}

func TestNormalizeSchemaRefusesWhatIsNotASchema(t *testing.T) {
	for _, info := range []*servingpb.SchemaInfo{
		{Type: "XML"},
		{Type: "AVRO", Definition: "not json"},
		{Type: "JSON", Definition: `{"type":"record","name":"X"}`}, // no fields
		{Type: "avro", Definition: string(make([]byte, maxSchemaDefinitionBytes+1))},
	} {
		if _, err := normalizeSchema(info); err == nil {
			t.Errorf("%s %.40q: accepted", info.Type, info.Definition)
		}
	}
	for _, info := range []*servingpb.SchemaInfo{nil, {}, {Type: "none"}, {Type: "bytes"}} {
		if sc, err := normalizeSchema(info); err != nil || sc != nil {
			t.Errorf("%v: %v, %v; want no schema", info, sc, err)
		}
	}
	sc, err := normalizeSchema(&servingpb.SchemaInfo{Type: "avro", Definition: userV1})
	if err != nil || sc.Type != schemaAvro {
		t.Fatalf("avro: %v, %v", sc, err)
	}
}

func TestSameSchemaComparesDefinitionsAsJSONDefaultsIncluded(t *testing.T) {
	spaced := `{ "type": "record", "name": "User",
		"fields": [ { "name": "name", "type": "string" } ] }`
	if !sameSchema(avroOf(userV1), avroOf(spaced)) {
		t.Error("the same Avro schema, spaced differently, is not the same")
	}
	if sameSchema(avroOf(userV1), avroOf(userV2)) {
		t.Error("two versions are the same")
	}
	noDefault := strings.Replace(userV2, `,"default":0`, "", 1)
	if sameSchema(avroOf(userV2), avroOf(noDefault)) {
		t.Error("a field's default is ignored (it decides compatibility)")
	}
	withProps := avroOf(userV1)
	withProps.Properties = map[string]string{"owner": "billing"}
	if !sameSchema(avroOf(userV1), withProps) {
		t.Error("properties make another version (they could add versions without end)")
	}
}

func TestSchemaVersionOfAcceptsOnlyTheProducersVersion(t *testing.T) {
	for _, tc := range []struct {
		want  string
		props map[string]string
		ok    bool
	}{
		{"", nil, true},
		{"", map[string]string{schemaVersionProperty: "3"}, false},
		{"3", map[string]string{schemaVersionProperty: "3"}, true},
		{"3", map[string]string{schemaVersionProperty: "2"}, false},
		{"3", map[string]string{schemaVersionProperty: "03"}, false},
		{"3", nil, false},
	} {
		if err := schemaVersionOf(tc.want, tc.props); (err == nil) != tc.ok {
			t.Errorf("want %q, props %v: %v", tc.want, tc.props, err)
		}
	}
}
