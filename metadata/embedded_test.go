package metadata_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEmbeddedEtcdKeepsDataAcrossRestart(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := t.TempDir()
	cfg := metadata.EmbeddedConfig{Dir: dir, ClientAddr: "127.0.0.1:0", PeerAddr: "127.0.0.1:0"}
	e, err := metadata.StartEmbedded(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := metadata.Open(ctx, metadata.Config{Endpoints: e.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client().Put(ctx, "/x", "1"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e, err = metadata.StartEmbedded(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err = metadata.Open(ctx, metadata.Config{Endpoints: e.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := s.Client().Get(ctx, "/x")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "1" {
		t.Fatalf("after restart: %v %v", resp, err)
	}
}

func TestOpenOnDeadEtcdFailsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	_, err := metadata.Open(ctx, metadata.Config{
		Endpoints:      []string{"http://127.0.0.1:1"},
		RequestTimeout: 300 * time.Millisecond,
	})
	if errcode.CodeOf(err) != errcode.Unavailable {
		t.Fatalf("got %v (code %v), want Unavailable", err, errcode.CodeOf(err))
	}
}

func TestStoreOperationOnStoppedEtcdFailsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: t.TempDir(), ClientAddr: "127.0.0.1:0", PeerAddr: "127.0.0.1:0", UnsafeNoFsync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := metadata.Open(ctx, metadata.Config{Endpoints: e.Endpoints(), RequestTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e.Close()
	_, err = s.GetTopic(ctx, "public/default/t")
	if errcode.CodeOf(err) != errcode.Unavailable || !errcode.IsRetriable(err) {
		t.Fatalf("got %v (code %v), want Unavailable", err, errcode.CodeOf(err))
	}
}

func TestMetatestStoreIsUsable(t *testing.T) {
	t.Parallel()
	s := metatest.OpenStore(t)
	if _, err := s.Client().Put(testCtx(t), "/k", "v"); err != nil {
		t.Fatal(err)
	}
}

func TestCallerDeadlineOnDeadEtcdIsTimeout(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	e, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: t.TempDir(), ClientAddr: "127.0.0.1:0", PeerAddr: "127.0.0.1:0", UnsafeNoFsync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := metadata.Open(ctx, metadata.Config{Endpoints: e.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e.Close()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = s.GetCursor(short, "public/default/t", "s")
	if errcode.CodeOf(err) != errcode.Timeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v (code %v), want Timeout wrapping DeadlineExceeded", err, errcode.CodeOf(err))
	}
}
