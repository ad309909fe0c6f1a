package metadata_test

import (
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

func TestBadConfigRejectedBeforeConnecting(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	for name, cfg := range map[string]metadata.Config{
		"no endpoints":      {},
		"prefix without /":  {Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "strata"},
		"prefix ending /":   {Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "/strata/"},
		"negative timeout":  {Endpoints: []string{"http://127.0.0.1:1"}, RequestTimeout: -time.Second},
		"huge id batch":     {Endpoints: []string{"http://127.0.0.1:1"}, LedgerIDBatch: metadata.MaxLedgerIDBatch + 1},
		"negative id batch": {Endpoints: []string{"http://127.0.0.1:1"}, LedgerIDBatch: -1},
	} {
		if _, err := metadata.Open(ctx, cfg); errcode.CodeOf(err) != errcode.InvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", name, err)
		}
	}
	if _, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{}, nil); errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Errorf("embedded without Dir: %v", err)
	}
}

func TestPrefixesIsolateClustersSharingOneEtcd(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	eps := metatest.StartEtcd(t)
	a, err := metadata.Open(ctx, metadata.Config{Endpoints: eps, Prefix: "/a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := metadata.Open(ctx, metadata.Config{Endpoints: eps, Prefix: "/b"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.CreateTopic(ctx, &metadata.Topic{Name: "public/default/t"}); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(ctx, &metadata.Topic{Name: "public/default/t"}); err != nil {
		t.Fatalf("same topic under another prefix: %v", err)
	}
	if ts, _ := b.ListTopics(ctx, ""); len(ts) != 1 {
		t.Fatalf("prefix /b sees %d topics", len(ts))
	}
}

func TestNewSessionRejectsBadTTL(t *testing.T) {
	t.Parallel()
	s := metatest.OpenStore(t)
	for _, ttl := range []time.Duration{0, -time.Second, 2 * metadata.MaxSessionTTL} {
		if _, err := s.NewSession(testCtx(t), ttl); errcode.CodeOf(err) != errcode.InvalidArgument {
			t.Errorf("ttl %v: %v", ttl, err)
		}
	}
}
