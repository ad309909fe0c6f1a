package rpcpool

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
)

const (
	minShift = 8  // 256 B: smaller requests share this tier
	maxShift = 26 // 64 MiB: larger requests are allocated and dropped
)

// Pool is a mem.BufferPool with one sync.Pool per power of two between
// 256 B and 64 MiB. Buffers are not cleared. The zero value is ready.
type Pool struct {
	tiers [maxShift + 1]sync.Pool
}

var _ mem.BufferPool = (*Pool)(nil)

// Shared is the pool the options below install.
var Shared = &Pool{}

// Get returns a buffer of length n whose capacity is n rounded up to a
// power of two. Its contents are arbitrary.
func (p *Pool) Get(n int) *[]byte {
	shift := minShift
	if n > 1 {
		shift = max(minShift, bits.Len(uint(n-1)))
	}
	if shift > maxShift {
		b := make([]byte, n)
		return &b
	}
	if v, ok := p.tiers[shift].Get().(*[]byte); ok {
		*v = (*v)[:n]
		return v
	}
	b := make([]byte, n, 1<<shift)
	return &b
}

// Put returns a buffer to the tier its capacity fully covers.
func (p *Pool) Put(b *[]byte) {
	c := cap(*b)
	if c < 1<<minShift {
		return
	}
	shift := bits.Len(uint(c)) - 1 // floor(log2(c)): every Get from it fits
	if shift > maxShift {
		return
	}
	p.tiers[shift].Put(b)
}

// ServerOption installs Shared on a gRPC server.
func ServerOption() grpc.ServerOption { return experimental.BufferPool(Shared) }

// DialOption installs Shared on a gRPC client connection.
func DialOption() grpc.DialOption { return experimental.WithBufferPool(Shared) }

// InstallDefault makes Shared gRPC's process-wide default pool, which the
// protobuf codec uses for marshalled messages and for received messages
// that span several frames (per-connection options cannot reach it). Call
// it from an init function of a program's main package, as gRPC requires;
// a library must not.
func InstallDefault() { experimental.SetDefaultBufferPool(Shared) }
