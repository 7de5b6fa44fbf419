package serial

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.bug.st/serial"
)

const (
	// readSize is the most one read of the port returns.
	readSize = 32 << 10
	// writeSize is the most one write to the port carries, so a close waits
	// at most for one small write to drain.
	writeSize = 4 << 10
	// exclusiveQueue bounds the output queued for the one stream of an
	// unshared port; when it is full the port is not read (backpressure).
	exclusiveQueue = readSize
	// sharedQueue bounds the output queued for each stream of a shared port;
	// what does not fit is dropped for that stream.
	sharedQueue = 256 << 10
	// closeWait bounds how long closing waits for a write stuck in the kernel
	// (a device that does not drain) before closing the port anyway.
	closeWait = 2 * time.Second
	// handOver bounds how long a stream waits for the port's current
	// stream to leave, without sharing.
	handOver = 2 * time.Second
)

// errPortClosed reports an operation on a port that was closed meanwhile.
var errPortClosed = errors.New("serial port closed")

// device is an open serial port. One pump goroutine reads it while at least
// one stream listens and hands what it reads to the listening streams;
// streams write to it directly.
type device struct {
	path  string
	port  serial.Port
	share bool
	log   hclog.Logger

	closing chan struct{} // closed when the port starts closing (by us or on failure)
	done    chan struct{} // closed when the pump has stopped and the port is closed
	wake    chan struct{} // tells the pump a stream joined

	mu      sync.Mutex
	closed  bool
	err     error // why the port closed; nil when closed on request
	readers map[*reader]struct{}
	busy    int           // port operations (writes, ioctls) in flight
	idle    chan struct{} // closed when busy drops to 0 while closing
}

func newDevice(path string, p serial.Port, share bool, log hclog.Logger) *device {
	d := &device{
		path: path, port: p, share: share, log: log,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		readers: map[*reader]struct{}{},
	}
	go d.pump()
	return d
}

// subscribe adds a listening stream. Without sharing, a port has one at
// most: a second waits up to handOver for the first to leave (a client
// that cancels a stream and reconnects at once is usually quicker than the
// cancellation, which crosses two processes) and is refused after that.
func (d *device) subscribe(ctx context.Context) (*reader, error) {
	var wait <-chan time.Time
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil, errPortClosed
		}
		var holder *reader
		if !d.share {
			for r := range d.readers {
				holder = r
			}
		}
		if holder == nil {
			break
		}
		d.mu.Unlock()
		if wait == nil {
			t := time.NewTimer(handOver)
			defer t.Stop()
			wait = t.C
		}
		select {
		case <-holder.gone:
		case <-d.closing:
		case <-wait:
			return nil, errInUse
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer d.mu.Unlock()
	limit := exclusiveQueue
	if d.share {
		limit = sharedQueue
	}
	r := newReader(limit)
	d.readers[r] = struct{}{}
	signal(d.wake)
	return r, nil
}

var errInUse = errors.New("in use")

// unsubscribe removes a stream; output queued for it is discarded.
func (d *device) unsubscribe(r *reader) {
	d.mu.Lock()
	delete(d.readers, r)
	d.mu.Unlock()
	close(r.gone)
	if n := r.missing(); n > 0 {
		d.log.Warn("a slow stream left while missing serial output", "path", d.path, "dropped_bytes", n)
	}
}

// listeners waits until at least one stream listens and returns them; nil
// when the port is closing.
func (d *device) listeners() []*reader {
	for {
		d.mu.Lock()
		if len(d.readers) > 0 {
			rs := make([]*reader, 0, len(d.readers))
			for r := range d.readers {
				rs = append(rs, r)
			}
			d.mu.Unlock()
			return rs
		}
		d.mu.Unlock()
		select {
		case <-d.wake:
		case <-d.closing:
			return nil
		}
	}
}

// pump reads the port while someone listens and delivers what it reads.
func (d *device) pump() {
	defer close(d.done)
	for {
		if d.listeners() == nil {
			return
		}
		buf := make([]byte, readSize)
		n, err := d.port.Read(buf)
		if err != nil {
			if !d.isClosed() {
				d.log.Error("serial port failed", "path", d.path, "error", err)
				_ = d.close(err)
			}
			return
		}
		if n > 0 && !d.deliver(buf[:n]) {
			return
		}
	}
}

// deliver hands a chunk to the listening streams: to the only one, waiting
// while its queue is full; or, when shared, to each that has room. It reports
// false when the port is closing.
func (d *device) deliver(chunk []byte) bool {
	for {
		rs := d.listeners()
		if rs == nil {
			return false
		}
		if d.share {
			for _, r := range rs {
				started, missed := r.offer(chunk)
				if started {
					d.log.Warn("a stream does not keep up with the serial port; dropping output for it until it does", "path", d.path)
				}
				if missed > 0 {
					d.log.Warn("a slow stream caught up after missing serial output", "path", d.path, "dropped_bytes", missed)
				}
			}
			return true
		}
		switch rs[0].put(chunk, d.closing) {
		case putDone:
			return true
		case putClosing:
			return false
		}
		// The stream left while we waited: the chunk goes to the next one.
	}
}

// write writes p to the port, in slices so that closing never waits long.
func (d *device) write(p []byte) error {
	for len(p) > 0 {
		n := min(len(p), writeSize)
		var m int
		err := d.control(func(port serial.Port) error {
			var err error
			m, err = port.Write(p[:n])
			return err
		})
		if err != nil {
			return err
		}
		p = p[m:]
	}
	return nil
}

// control runs one operation on the port's descriptor, unless the port is
// closing. Closing waits (a bounded time) for operations in flight, so no
// operation ever reaches a descriptor number that was closed and reused.
func (d *device) control(op func(serial.Port) error) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errPortClosed
	}
	d.busy++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.busy--
		if d.busy == 0 && d.idle != nil {
			close(d.idle)
			d.idle = nil
		}
		d.mu.Unlock()
	}()
	return op(d.port)
}

func (d *device) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// failure is why the port closed: nil when it was closed on request.
func (d *device) failure() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// close starts closing the port, once, recording why (nil: on request). It
// returns when the port's descriptor is closed; the pump may still be ending.
func (d *device) close(cause error) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed, d.err = true, cause
	var idle chan struct{}
	if d.busy > 0 {
		idle = make(chan struct{})
		d.idle = idle
	}
	d.mu.Unlock()
	close(d.closing)
	if idle != nil {
		select {
		case <-idle:
		case <-time.After(closeWait):
			d.log.Warn("a write to the serial port is stuck (the device does not drain); closing the port anyway", "path", d.path)
		}
	}
	return d.port.Close()
}

// shutdown closes the port on request and waits for the pump to stop.
func (d *device) shutdown() error {
	err := d.close(nil)
	<-d.done
	return err
}

func isPortClosed(err error) bool {
	var pe *serial.PortError
	return errors.As(err, &pe) && pe.Code() == serial.PortClosed
}

// signal wakes whoever waits on c (a channel with room for one token).
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
