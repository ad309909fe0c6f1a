package metadata_test

import (
	"slices"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

func TestDrainingBookiesAreLeftOutOfTheWritableOnesUntilUndrained(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	ss := newSession(t, s, 10*time.Second)
	for _, id := range []string{"b1:3181", "b2:3181", "b3:3181"} {
		if err := s.RegisterBookie(ctx, ss, metadata.BookieInfo{ID: id, Addr: id}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(bs []metadata.BookieInfo) []string {
		var out []string
		for _, b := range bs {
			out = append(out, b.ID)
		}
		return out
	}
	if err := s.SetBookieDraining(ctx, "b2:3181", true, time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBookieDraining(ctx, "gone:3181", true, time.Now().UnixNano()); err != nil { // a dead bookie may be drained
		t.Fatal(err)
	}
	if d, err := s.ListDrainingBookies(ctx); err != nil || !slices.Equal(d, []string{"b2:3181", "gone:3181"}) {
		t.Fatalf("draining %v %v", d, err)
	}
	if w, err := (metadata.WritableBookies{Store: s}).ListBookies(ctx); err != nil || !slices.Equal(ids(w), []string{"b1:3181", "b3:3181"}) {
		t.Fatalf("writable %v %v", ids(w), err)
	}
	if all, err := s.ListBookies(ctx); err != nil || len(all) != 3 {
		t.Fatalf("registered %v %v: draining changes no registration", ids(all), err)
	}
	if err := s.SetBookieDraining(ctx, "b2:3181", false, 0); err != nil {
		t.Fatal(err)
	}
	if w, err := (metadata.WritableBookies{Store: s}).ListBookies(ctx); err != nil || len(w) != 3 {
		t.Fatalf("writable after the undrain %v %v", ids(w), err)
	}
	if err := s.SetBookieDraining(ctx, "a/b", true, 0); errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("a bad id: %v", err)
	}
}

// A bookie registered read-only (its disk nearly full) is left out of the
// writable ones, and back in once it registers writable again.
func TestReadOnlyBookiesAreLeftOutOfTheWritableOnes(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	ss := newSession(t, s, 10*time.Second)
	for _, b := range []metadata.BookieInfo{{ID: "b1:3181", Addr: "b1:3181"}, {ID: "b2:3181", Addr: "b2:3181", ReadOnly: true}} {
		if err := s.RegisterBookie(ctx, ss, b); err != nil {
			t.Fatal(err)
		}
	}
	writable := func() []string {
		t.Helper()
		w, err := (metadata.WritableBookies{Store: s}).ListBookies(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range w {
			out = append(out, b.ID)
		}
		return out
	}
	if w := writable(); !slices.Equal(w, []string{"b1:3181"}) {
		t.Fatalf("writable %v, want the read-only bookie left out", w)
	}
	if all, err := s.ListBookies(ctx); err != nil || len(all) != 2 || !all[1].ReadOnly {
		t.Fatalf("registered %+v %v", all, err)
	}
	if err := s.RegisterBookie(ctx, ss, metadata.BookieInfo{ID: "b2:3181", Addr: "b2:3181"}); err != nil {
		t.Fatal(err)
	}
	if w := writable(); len(w) != 2 {
		t.Fatalf("writable %v after the bookie registered writable again", w)
	}
}
