package serial

import "sync"

// reader is the bounded queue of port output waiting to be sent to one
// stream. The pump fills it; the stream empties it.
type reader struct {
	limit int           // bytes; a chunk larger than limit fits an empty queue
	data  chan struct{} // a token when chunks were queued
	space chan struct{} // a token when chunks were taken
	gone  chan struct{} // closed when the stream left

	mu      sync.Mutex
	chunks  [][]byte
	size    int
	dropped int // bytes dropped since the queue last had room (shared ports)
}

func newReader(limit int) *reader {
	return &reader{
		limit: limit,
		data:  make(chan struct{}, 1),
		space: make(chan struct{}, 1),
		gone:  make(chan struct{}),
	}
}

// fits queues chunk if there is room, reporting whether it did. The caller
// holds r.mu.
func (r *reader) fits(chunk []byte) bool {
	if r.size > 0 && r.size+len(chunk) > r.limit {
		return false
	}
	r.chunks = append(r.chunks, chunk)
	r.size += len(chunk)
	signal(r.data)
	return true
}

type putResult int

const (
	putDone    putResult = iota // queued
	putGone                     // the stream left first
	putClosing                  // the port is closing
)

// put queues chunk, waiting while the queue is full (backpressure).
func (r *reader) put(chunk []byte, closing <-chan struct{}) putResult {
	for {
		r.mu.Lock()
		ok := r.fits(chunk)
		r.mu.Unlock()
		if ok {
			return putDone
		}
		select {
		case <-r.space:
		case <-r.gone:
			return putGone
		case <-closing:
			return putClosing
		}
	}
}

// offer queues chunk if there is room and drops it otherwise, never waiting.
// It reports whether this drop started a run of drops, and, when a run ended,
// how many bytes it lost.
func (r *reader) offer(chunk []byte) (started bool, missed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fits(chunk) {
		missed, r.dropped = r.dropped, 0
		return false, missed
	}
	started = r.dropped == 0
	r.dropped += len(chunk)
	return started, 0
}

// missing reports the bytes dropped in the current run of drops.
func (r *reader) missing() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// take empties the queue, returning what it held in order.
func (r *reader) take() [][]byte {
	r.mu.Lock()
	chunks := r.chunks
	r.chunks, r.size = nil, 0
	r.mu.Unlock()
	signal(r.space)
	return chunks
}
