// Package readq is the blocking read of an in-memory packet conn: take the next packet from
// a channel, unless the conn closes or a read deadline passes first, where the deadline may
// be moved while a read waits (net.PacketConn's SetReadDeadline). magicsock's Conn and
// natlab's simulated socket both read through it.
package readq

import (
	"net"
	"os"
	"sync"
	"time"
)

// Deadline is a read deadline (zero: none). Its zero value is ready to use; it is safe for
// concurrent use.
type Deadline struct {
	mu      sync.Mutex
	t       time.Time
	changed chan struct{} // closed when t changes; nil until first needed
}

// Set moves the deadline to t and wakes the reads waiting on the old one.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.t = t
	if d.changed != nil {
		close(d.changed)
		d.changed = nil
	}
}

func (d *Deadline) get() (time.Time, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.changed == nil {
		d.changed = make(chan struct{})
	}
	return d.t, d.changed
}

// Recv returns the next value from in. It fails with net.ErrClosed once closed is closed and
// with os.ErrDeadlineExceeded once d has passed (at once if it already has), re-reading d
// whenever it is Set.
func Recv[T any](d *Deadline, in <-chan T, closed <-chan struct{}) (T, error) {
	var zero T
	for {
		dl, changed := d.get()
		var (
			timeout <-chan time.Time
			t       *time.Timer
		)
		if !dl.IsZero() {
			left := time.Until(dl) // a wall-clock deadline, as net.Conn's
			if left <= 0 {
				return zero, os.ErrDeadlineExceeded
			}
			t = time.NewTimer(left)
			timeout = t.C
		}
		select {
		case v := <-in:
			stop(t)
			return v, nil
		case <-closed:
			stop(t)
			return zero, net.ErrClosed
		case <-timeout:
			return zero, os.ErrDeadlineExceeded
		case <-changed:
			stop(t)
		}
	}
}

func stop(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
