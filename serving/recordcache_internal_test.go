package serving

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	meta "github.com/strata-mq/strata/metadata"
)

// grantsMeta answers GetPermissions from a value the test sets, counting
// reads; block, when set, holds each read until it is closed.
type grantsMeta struct {
	Meta  // the other methods are not called
	reads atomic.Int64
	mu    sync.Mutex
	g     map[string]meta.Grant
	err   error
	block chan struct{}
}

func (m *grantsMeta) GetPermissions(context.Context, string) (map[string]meta.Grant, error) {
	m.reads.Add(1)
	m.mu.Lock()
	g, err, block := m.g, m.err, m.block
	m.mu.Unlock()
	if block != nil {
		<-block
	}
	return g, err
}

// awaitRead polls until a read has begun.
func (m *grantsMeta) awaitRead(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.reads.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no read began")
		}
		time.Sleep(time.Millisecond)
	}
}

func (m *grantsMeta) set(g map[string]meta.Grant, err error) {
	m.mu.Lock()
	m.g, m.err = g, err
	m.mu.Unlock()
}

func grantOf(actions ...meta.Action) map[string]meta.Grant {
	return map[string]meta.Grant{"app": {Actions: actions}}
}

func TestRecordCacheReadsARecordOncePerTTLHoweverManyCheckAtOnce(t *testing.T) {
	m := &grantsMeta{g: grantOf(meta.ActionProduce)}
	c := newRecordCache(m, time.Second, 10*time.Second)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if g, err := c.permissions(context.Background(), "t/ns"); err != nil || !g["app"].Allows(meta.ActionProduce) {
				t.Errorf("permissions: %v, %v", g, err)
			}
		})
	}
	wg.Wait()
	if n := m.reads.Load(); n != 1 {
		t.Fatalf("100 checks within the TTL read etcd %d times, want 1", n)
	}
	m.set(grantOf(meta.ActionConsume), nil)
	now = now.Add(999 * time.Millisecond)
	if g, _ := c.permissions(context.Background(), "t/ns"); !g["app"].Allows(meta.ActionProduce) || m.reads.Load() != 1 {
		t.Fatalf("within the TTL: %v after %d reads", g, m.reads.Load())
	}
	now = now.Add(time.Millisecond)
	if g, _ := c.permissions(context.Background(), "t/ns"); !g["app"].Allows(meta.ActionConsume) || m.reads.Load() != 2 {
		t.Fatalf("once the TTL passed the change is not seen: %v after %d reads", g, m.reads.Load())
	}
}

func TestRecordCacheKeepsNoFailedRead(t *testing.T) {
	m := &grantsMeta{err: errors.New("etcd down")}
	c := newRecordCache(m, time.Hour, 10*time.Second)
	if _, err := c.permissions(context.Background(), "t/ns"); err == nil {
		t.Fatal("a failed read answered no error")
	}
	m.set(grantOf(meta.ActionProduce), nil)
	if g, err := c.permissions(context.Background(), "t/ns"); err != nil || !g["app"].Allows(meta.ActionProduce) {
		t.Fatalf("after a failed read: %v, %v", g, err)
	}
}

// TestRecordCacheForgetSeesTheChangeEvenPastAReadInFlight: after forget,
// the next check reads afresh, and a read that began before the change and
// ends after forget is not kept.
func TestRecordCacheForgetSeesTheChangeEvenPastAReadInFlight(t *testing.T) {
	m := &grantsMeta{g: grantOf(meta.ActionProduce), block: make(chan struct{})}
	c := newRecordCache(m, time.Hour, 10*time.Second)
	ctx := context.Background()
	first := make(chan map[string]meta.Grant)
	go func() {
		g, _ := c.permissions(ctx, "t/ns")
		first <- g
	}()
	m.awaitRead(t) // the read is in flight; it blocks until released
	// The revoke lands while the old read is in flight.
	c.forget(nsGrantsKey("t/ns"))
	close(m.block)
	if g := <-first; !g["app"].Allows(meta.ActionProduce) {
		t.Fatalf("the read in flight answered %v", g)
	}
	m.mu.Lock()
	m.g, m.block = nil, nil
	m.mu.Unlock()
	if g, _ := c.permissions(ctx, "t/ns"); len(g) != 0 {
		t.Fatalf("after forget the revoked grant is still answered: %v", g)
	}
	if n := m.reads.Load(); n != 2 {
		t.Fatalf("%d reads, want 2", n)
	}
}

func TestRecordCacheWaiterGivesUpWithItsContextWithoutFailingOthers(t *testing.T) {
	m := &grantsMeta{g: grantOf(meta.ActionProduce), block: make(chan struct{})}
	c := newRecordCache(m, time.Hour, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	other := make(chan error)
	go func() {
		_, err := c.permissions(context.Background(), "t/ns")
		other <- err
	}()
	m.awaitRead(t)
	if _, err := c.permissions(ctx, "t/ns"); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled check: %v", err)
	}
	close(m.block)
	if err := <-other; err != nil {
		t.Fatalf("the other check failed with the cancelled one: %v", err)
	}
}
