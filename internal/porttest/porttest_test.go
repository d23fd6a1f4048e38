package porttest

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestPortsAreDistinctBindableAndLocked: ports handed out are never repeated, can be bound
// over UDP and TCP, lie outside the kernel's ephemeral range (where it leaves room), and stay
// locked against any other open of their lock file (another test binary).
func TestPortsAreDistinctBindableAndLocked(t *testing.T) {
	rs := outsideEphemeral()
	seen := map[int]bool{}
	for range 50 {
		p := port(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if len(rs) > 0 && !inRanges(rs, p) {
			t.Fatalf("port %d outside %v", p, rs)
		}
		a := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		c, err := net.ListenPacket("udp4", a)
		if err != nil {
			t.Fatalf("udp %s: %v", a, err)
		}
		c.Close()
		l, err := net.Listen("tcp4", a)
		if err != nil {
			t.Fatalf("tcp %s: %v", a, err)
		}
		l.Close()
		f, ok, err := lock(filepath.Join(os.TempDir(), "meshkafka-ports", strconv.Itoa(p)))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			f.Close()
			t.Fatalf("port %d: its lock could be taken again", p)
		}
	}
}

// TestLockedPortIsSkipped: a port whose lock another open file holds (another test binary)
// is not handed out; once that file closes, it is.
func TestLockedPortIsSkipped(t *testing.T) {
	p := port(t) // free, and locked by this package
	mu.Lock()
	held[p].Close()
	delete(held, p)
	mu.Unlock()
	f, ok, err := lock(filepath.Join(os.TempDir(), "meshkafka-ports", strconv.Itoa(p)))
	if err != nil || !ok {
		t.Fatalf("relock %d: %v %v", p, ok, err)
	}
	only := []portRange{{p, p}}
	if q, err := claimIn(only); err == nil {
		t.Fatalf("claimIn(%d..%d) = %d while another file holds its lock", p, p, q)
	}
	f.Close()
	if q, err := claimIn(only); err != nil || q != p {
		t.Fatalf("claimIn(%d..%d) after the lock's release = %d, %v", p, p, q, err)
	}
}

func inRanges(rs []portRange, p int) bool {
	for _, r := range rs {
		if p >= r.lo && p <= r.hi {
			return true
		}
	}
	return false
}

// port claims a port as Addr does and returns its number.
func port(t *testing.T) int {
	t.Helper()
	p, err := claimIn(outsideEphemeral())
	if err != nil {
		t.Fatal(err)
	}
	return p
}
