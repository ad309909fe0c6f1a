package rpcpool

import (
	"testing"

	"google.golang.org/grpc/mem"
)

func TestGetReturnsTheRequestedLengthWithPowerOfTwoCapacity(t *testing.T) {
	p := &Pool{}
	for _, n := range []int{0, 1, 255, 256, 257, 4096, 65536, 65537, 1 << 20} {
		b := p.Get(n)
		if len(*b) != n {
			t.Fatalf("Get(%d): len %d", n, len(*b))
		}
		if c := cap(*b); c < n || c&(c-1) != 0 || c < 1<<minShift {
			t.Fatalf("Get(%d): cap %d, want a power of two >= max(n, 256)", n, c)
		}
		p.Put(b)
	}
}

func TestPutBufferIsReusedOnlyForRequestsItCanHold(t *testing.T) {
	p := &Pool{}
	odd := make([]byte, 3000) // capacity not a power of two: floor tier 2048
	p.Put(&odd)
	for range 100 { // sync.Pool may drop entries; any reuse must fit
		b := p.Get(3000)
		if cap(*b) < 3000 {
			t.Fatalf("Get(3000) returned cap %d", cap(*b))
		}
		b2 := p.Get(2048)
		if cap(*b2) < 2048 {
			t.Fatalf("Get(2048) returned cap %d", cap(*b2))
		}
	}
}

func TestHugeRequestsAreAllocatedNotPooled(t *testing.T) {
	p := &Pool{}
	b := p.Get(1<<maxShift + 1)
	if len(*b) != 1<<maxShift+1 {
		t.Fatalf("len %d", len(*b))
	}
	p.Put(b) // must not panic or keep it
}

// InstallDefault must reach the pool gRPC's codec uses for every message,
// which per-connection options cannot set.
func TestInstallDefaultMakesSharedTheProcessWidePool(t *testing.T) {
	InstallDefault()
	if mem.DefaultBufferPool() != mem.BufferPool(Shared) {
		t.Fatalf("default pool is %T, want rpcpool.Shared", mem.DefaultBufferPool())
	}
}
