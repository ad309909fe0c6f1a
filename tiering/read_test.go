package tiering

import (
	"context"
	"errors"
	"testing"
	"time"
)

// gatedStore holds every Get until open is closed or the Get's context
// ends, and tells entered of each Get.
type gatedStore struct {
	Store
	open    chan struct{}
	entered chan struct{} // one value per Get; buffered
	// cancelled, when set, gets a value for each Get ended by its
	// context before the gate opened; buffered.
	cancelled chan struct{}
}

func (g *gatedStore) Get(ctx context.Context, key string, off, n int64) ([]byte, error) {
	g.entered <- struct{}{}
	select {
	case <-g.open:
		return g.Store.Get(ctx, key, off, n)
	case <-ctx.Done():
		if g.cancelled != nil {
			g.cancelled <- struct{}{}
		}
		return nil, ctx.Err()
	}
}

// pollUntil polls cond until it holds or the deadline passes.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// receive returns the value from c, failing the test after a deadline.
func receive[T any](t *testing.T, what string, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestCallerGivingUpOnASharedBatchFetchDoesNotFailTheOtherWaiters(t *testing.T) {
	ctx := context.Background()
	dir, src := mustDir(t), &memSource{}
	l, batches := testLedger(src, 9, 60, 3, 300, 1, 1, 7)
	off, err := testOffloader(t, dir, src).Offload(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	l.Offload = off
	store := &gatedStore{Store: dir, open: make(chan struct{}), entered: make(chan struct{}, 16)}
	r, _ := NewReader(store, ReaderConfig{ReadAheadBatches: -1})
	defer r.Close()
	last := off.Segments[0].Batches[0].LastEntry

	// The first caller starts the fetch of the batch, the second waits on it.
	ctxA, cancelA := context.WithCancel(ctx)
	defer cancelA()
	errA := make(chan error, 1)
	go func() { _, err := r.ReadEntries(ctxA, l, 0, last); errA <- err }()
	receive(t, "the first caller's fetch to reach the store", store.entered)
	type result struct {
		got []EntryRows
		err error
	}
	resB := make(chan result, 1)
	go func() { got, err := r.ReadEntries(ctx, l, 0, last); resB <- result{got, err} }()
	pollUntil(t, "the second caller to wait on the first one's fetch", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, f := range r.mu.inflight {
			return f.waiters == 2
		}
		return false
	})

	cancelA()
	if err := receive(t, "the first caller to return on its cancel", errA); !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want its own context's cancellation", err)
	}
	close(store.open)
	res := receive(t, "the second caller's read", resB)
	if res.err != nil || len(res.got) != int(last+1) {
		t.Fatalf("second caller: %d entries, %v; want %d entries", len(res.got), res.err, last+1)
	}
	checkMessages(t, l, 0, res.got, batches)
	if n := len(store.entered); n != 0 {
		t.Fatalf("%d more reads of the batch, want it fetched once", n)
	}
}

func TestLastCallerGivingUpCancelsTheFetchAndALaterCallerFetchesAnew(t *testing.T) {
	ctx := context.Background()
	dir, src := mustDir(t), &memSource{}
	l, batches := testLedger(src, 10, 60, 3, 300, 1, 1, 8)
	off, err := testOffloader(t, dir, src).Offload(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	l.Offload = off
	store := &gatedStore{Store: dir, open: make(chan struct{}), entered: make(chan struct{}, 16), cancelled: make(chan struct{}, 16)}
	r, _ := NewReader(store, ReaderConfig{ReadAheadBatches: -1})
	defer r.Close()
	last := off.Segments[0].Batches[0].LastEntry

	ctxA, cancelA := context.WithCancel(ctx)
	errA := make(chan error, 1)
	go func() { _, err := r.ReadEntries(ctxA, l, 0, last); errA <- err }()
	receive(t, "the fetch to reach the store", store.entered)
	cancelA()
	if err := receive(t, "the caller to return on its cancel", errA); !errors.Is(err, context.Canceled) {
		t.Fatalf("caller: %v, want its own context's cancellation", err)
	}
	// The abandoned fetch is forgotten: a later caller must not inherit
	// its cancellation.
	pollUntil(t, "the abandoned fetch to be forgotten", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.mu.inflight) == 0
	})
	// ... and cancelled: its read of the store ends before the gate opens.
	receive(t, "the abandoned fetch's read to be cancelled", store.cancelled)
	close(store.open)
	got, err := r.ReadEntries(ctx, l, 0, last)
	if err != nil {
		t.Fatalf("later caller: %v", err)
	}
	checkMessages(t, l, 0, got, batches)
	if len(store.entered) == 0 {
		t.Fatal("the later caller did not fetch anew")
	}
}
