package serving

import (
	"context"
	"maps"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// The schema registry's admin calls (schema.go says how versions are
// checked). Any node answers: they are metadata only.

func versionedPB(v metadata.SchemaVersion) *servingpb.VersionedSchema {
	return &servingpb.VersionedSchema{Version: v.Version, CreatedUnixNano: v.Schema.CreatedUnixNano, Deleted: v.Schema.Deleted,
		Schema: &servingpb.SchemaInfo{Type: v.Schema.Type, Definition: v.Schema.Definition, Properties: maps.Clone(v.Schema.Properties)}}
}

// schemasOf answers the canonical name of a schema call's topic and its
// versions.
func (n *Node) schemasOf(ctx context.Context, raw string) (string, []metadata.SchemaVersion, error) {
	name, err := checkSchemaAdminTopic(raw)
	if err != nil {
		return "", nil, err
	}
	all, err := n.meta.ListSchemas(ctx, name)
	if err != nil {
		return "", nil, unavailable("reading schemas", err)
	}
	return name, all, nil
}

// GetSchema answers one version of a topic's schema, or its latest;
// NOT_FOUND when there is none (the latest of a topic whose schema was
// deleted is the deletion).
func (n *Node) GetSchema(ctx context.Context, req *servingpb.GetSchemaRequest) (*servingpb.GetSchemaResponse, error) {
	name, all, err := n.schemasOf(ctx, req.GetTopic())
	if err != nil {
		return nil, err
	}
	if req.Version == nil {
		if len(all) == 0 {
			return nil, errcode.New(errcode.EntryNotFound, "topic %s has no schema", name)
		}
		return &servingpb.GetSchemaResponse{Schema: versionedPB(all[len(all)-1])}, nil
	}
	if v := req.GetVersion(); v < uint64(len(all)) {
		return &servingpb.GetSchemaResponse{Schema: versionedPB(all[v])}, nil
	}
	return nil, errcode.New(errcode.EntryNotFound, "topic %s has no schema version %d", name, req.GetVersion())
}

// ListSchemas answers every version of a topic's schema, deletions too.
func (n *Node) ListSchemas(ctx context.Context, req *servingpb.ListSchemasRequest) (*servingpb.ListSchemasResponse, error) {
	_, all, err := n.schemasOf(ctx, req.GetTopic())
	if err != nil {
		return nil, err
	}
	out := &servingpb.ListSchemasResponse{Versions: make([]*servingpb.VersionedSchema, 0, len(all))}
	for _, v := range all {
		out.Versions = append(out.Versions, versionedPB(v))
	}
	return out, nil
}

// CreateSchema adds a version as a producer would, even where the
// namespace lets only admins add them; an identical version answers its
// number.
func (n *Node) CreateSchema(ctx context.Context, req *servingpb.CreateSchemaRequest) (*servingpb.CreateSchemaResponse, error) {
	name, err := checkSchemaAdminTopic(req.GetTopic())
	if err != nil {
		return nil, err
	}
	if sc, err := normalizeSchema(req.GetSchema()); err != nil {
		return nil, err
	} else if sc == nil {
		return nil, errcode.New(errcode.InvalidArgument, "a schema needs a type other than BYTES, or a definition")
	}
	_, ns, err := schemaTopic(name)
	if err != nil {
		return nil, err
	}
	pol, err := n.policyOf(ctx, ns)
	if err != nil {
		return nil, err
	}
	v, err := n.producerSchema(ctx, name, req.GetSchema(), pol, true)
	if err != nil {
		return nil, err
	}
	return &servingpb.CreateSchemaResponse{Version: *v}, nil
}

// DeleteSchema leaves a topic without a schema: it adds a deletion
// version. A topic without one is NOT_FOUND.
func (n *Node) DeleteSchema(ctx context.Context, req *servingpb.DeleteSchemaRequest) (*servingpb.DeleteSchemaResponse, error) {
	name, all, err := n.schemasOf(ctx, req.GetTopic())
	if err != nil {
		return nil, err
	}
	if len(activeSchemas(all)) == 0 {
		return nil, errcode.New(errcode.EntryNotFound, "topic %s has no schema", name)
	}
	next := uint64(len(all))
	err = n.meta.AddSchema(ctx, name, next, metadata.Schema{Deleted: true, CreatedUnixNano: nowNanos()})
	n.schemas.forget(schemasKey(name))
	if err != nil {
		return nil, unavailable("deleting the schema", err)
	}
	n.log.Info("schema deleted", "topic", name, "version", next)
	return &servingpb.DeleteSchemaResponse{Version: next}, nil
}

// TestSchemaCompatibility answers whether a schema could be added as a new
// version (or is one already), without adding it.
func (n *Node) TestSchemaCompatibility(ctx context.Context, req *servingpb.TestSchemaCompatibilityRequest) (*servingpb.TestSchemaCompatibilityResponse, error) {
	sc, err := normalizeSchema(req.GetSchema())
	if err != nil {
		return nil, err
	}
	if sc == nil {
		return nil, errcode.New(errcode.InvalidArgument, "a schema needs a type other than BYTES, or a definition")
	}
	name, all, err := n.schemasOf(ctx, req.GetTopic())
	if err != nil {
		return nil, err
	}
	_, ns, err := schemaTopic(name)
	if err != nil {
		return nil, err
	}
	pol, err := n.policyOf(ctx, ns)
	if err != nil {
		return nil, err
	}
	strategy := schemaStrategy(pol.SchemaCompatibility)
	active := activeSchemas(all)
	out := &servingpb.TestSchemaCompatibilityResponse{Compatible: true, Strategy: strategy}
	for _, v := range active {
		if sameSchema(*sc, v.Schema) {
			return out, nil
		}
	}
	if err := checkNewVersion(strategy, active, *sc); err != nil {
		out.Compatible, out.Reason = false, err.Error()
	}
	return out, nil
}
