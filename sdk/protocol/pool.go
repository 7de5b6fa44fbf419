package protocol

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc/mem"
)

// maxTier is the largest pooled size, 2^maxTier bytes; larger buffers are
// allocated and left to the garbage collector.
const maxTier = 24 // 16 MiB

// Pool is a gRPC buffer pool (mem.BufferPool).
//
// grpc-go's default pool has coarse tiers (a 33 KiB message takes a 1 MiB
// buffer) and clears the whole capacity of a reused buffer, so byte streams
// framed just over 32 KiB spent most of their CPU zeroing memory (see
// docs/PERFORMANCE.md). This pool has a tier for every power of two, so a
// buffer is at most twice the size asked for, and does not clear reused
// buffers: whoever gets a buffer fills the part it uses before reading it
// (gRPC decodes into buffers it has just read from the connection and
// encodes into buffers it then writes out in full; a [Frame] is read into a
// buffer and keeps only what was read), and the buffers never leave the
// process.
type Pool struct {
	tiers [maxTier + 1]sync.Pool
}

var _ mem.BufferPool = (*Pool)(nil) // Interface guard

// tier is the smallest t with 2^t >= n.
func tier(n int) int {
	if n <= 1 {
		return 0
	}
	return bits.Len(uint(n - 1))
}

// Get returns a buffer of length n; its contents are whatever it held before.
func (p *Pool) Get(n int) *[]byte {
	t := tier(n)
	if t > maxTier {
		b := make([]byte, n)
		return &b
	}
	if v, ok := p.tiers[t].Get().(*[]byte); ok {
		*v = (*v)[:n]
		return v
	}
	b := make([]byte, n, 1<<t)
	return &b
}

// Put returns a buffer Get handed out.
func (p *Pool) Put(b *[]byte) {
	c := cap(*b)
	if t := tier(c); t <= maxTier && c == 1<<t {
		p.tiers[t].Put(b)
	}
}

// Shared is the pool every hop uses.
var Shared = &Pool{}
