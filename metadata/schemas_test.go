package metadata_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/strata-mq/strata/metadata"
)

// TestSchemaVersionsAreAddedInOrderOneWriterAtATimeAndGoWithTheirTopic:
// versions list in number order past 9 (the keys are zero-padded); of two
// writers adding the same next version one wins and the other gets
// ErrBadVersion; a version cannot skip a number; a partition has no
// schema of its own; and deleting the topic deletes its versions, so
// that a topic made again starts at version 0.
func TestSchemaVersionsAreAddedInOrderOneWriterAtATimeAndGoWithTheirTopic(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	const topic = "acme/orders/created"
	if err := s1.CreateTopic(ctx, &metadata.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	for v := range uint64(12) {
		if err := s1.AddSchema(ctx, topic, v, metadata.Schema{Type: "STRING", Definition: fmt.Sprint(v)}); err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
	}
	all, err := s2.ListSchemas(ctx, topic)
	if err != nil || len(all) != 12 {
		t.Fatalf("%d versions, %v", len(all), err)
	}
	for i, v := range all {
		if v.Version != uint64(i) || v.Schema.Definition != fmt.Sprint(i) {
			t.Fatalf("version %d listed as %+v", i, v)
		}
	}
	r := race(
		func() error { return s1.AddSchema(ctx, topic, 12, metadata.Schema{Type: "STRING", Definition: "a"}) },
		func() error { return s2.AddSchema(ctx, topic, 12, metadata.Schema{Type: "STRING", Definition: "b"}) })
	oneWins(t, r)
	if err := s1.AddSchema(ctx, topic, 14, metadata.Schema{Type: "STRING"}); !errors.Is(err, metadata.ErrBadVersion) {
		t.Fatalf("version 14 after 12: %v, want ErrBadVersion", err)
	}
	if _, err := s1.ListSchemas(ctx, topic+"-partition-0"); err == nil {
		t.Fatal("a partition's schemas were listed")
	}
	if err := s1.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if all, err := s1.ListSchemas(ctx, topic); err != nil || len(all) != 0 {
		t.Fatalf("after the topic's deletion: %d versions, %v", len(all), err)
	}
	// Its messages went with it: a topic made again starts at version 0.
	if err := s2.AddSchema(ctx, topic, 0, metadata.Schema{Type: "STRING"}); err != nil {
		t.Fatal(err)
	}
}
