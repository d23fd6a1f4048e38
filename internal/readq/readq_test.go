package readq

import (
	"errors"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRecv(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d Deadline
		in := make(chan int, 1)
		closed := make(chan struct{})

		in <- 7
		if v, err := Recv(&d, in, closed); v != 7 || err != nil {
			t.Fatalf("queued value: %d %v", v, err)
		}

		// A deadline in the past fails at once, even with a packet queued.
		d.Set(time.Now().Add(-time.Second))
		in <- 8
		if _, err := Recv(&d, in, closed); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("past deadline: %v", err)
		}
		d.Set(time.Time{})
		if v, err := Recv(&d, in, closed); v != 8 || err != nil {
			t.Fatalf("after clearing the deadline: %d %v", v, err)
		}

		// A waiting read ends when its deadline passes, not before.
		start := time.Now()
		d.Set(start.Add(time.Second))
		if _, err := Recv(&d, in, closed); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("deadline: %v after %v", err, time.Since(start))
		}

		// Moving the deadline wakes a waiting read, which then waits for the new one.
		d.Set(time.Time{})
		done := make(chan error, 1)
		start = time.Now()
		go func() { _, err := Recv(&d, in, closed); done <- err }()
		synctest.Wait()
		d.Set(start.Add(3 * time.Second))
		if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != 3*time.Second {
			t.Fatalf("moved deadline: %v after %v", err, time.Since(start))
		}

		// Closing ends a waiting read.
		d.Set(time.Time{})
		go func() { _, err := Recv(&d, in, closed); done <- err }()
		synctest.Wait()
		close(closed)
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("closed: %v", err)
		}
	})
}
