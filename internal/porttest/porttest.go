package porttest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// lowest is the first port handed out: below it are well-known and registered services
// (9092, 3478, ...) that tests or the machine may bind by number.
const lowest = 10000

var (
	mu   sync.Mutex
	held = map[int]*os.File{} // port → its lock file, open (and locked) until the process exits
)

// Addr returns "127.0.0.1:port" for a port that both UDP and TCP can bind now and that no
// other caller of this package, in any process, is given while this test binary runs.
func Addr(tb testing.TB) string {
	tb.Helper()
	p, err := claimIn(outsideEphemeral())
	if err != nil {
		tb.Fatalf("porttest: %v", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// claimIn finds, locks and returns a free port in rs (from bind(0) if rs is empty).
func claimIn(rs []portRange) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	dir := filepath.Join(os.TempDir(), "meshkafka-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, err
	}
	for range 2000 {
		p, err := candidate(rs)
		if err != nil {
			return 0, err
		}
		if _, ok := held[p]; ok {
			continue
		}
		f, ok, err := lock(filepath.Join(dir, strconv.Itoa(p)))
		if err != nil {
			return 0, err
		}
		if !ok {
			continue // another test binary has it
		}
		if !bindable(p) {
			f.Close() // releases the lock
			continue
		}
		held[p] = f
		return p, nil
	}
	return 0, errors.New("no free loopback port found in 2000 tries")
}

// portRange is [lo, hi].
type portRange struct{ lo, hi int }

// outsideEphemeral is where ports are picked: the ranges above lowest outside the kernel's
// ephemeral range, or none when they are too small (then bind(0) picks).
func outsideEphemeral() []portRange {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return nil
	}
	elo, err1 := strconv.Atoi(f[0])
	ehi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return nil
	}
	var rs []portRange
	for _, r := range []portRange{{lowest, elo - 1}, {ehi + 1, 65535}} {
		if r.hi-r.lo+1 >= 1000 {
			rs = append(rs, r)
		}
	}
	return rs
}

// candidate is a random port from ranges, weighted by size, or one bind(0) gives.
func candidate(rs []portRange) (int, error) {
	if len(rs) == 0 {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	n := 0
	for _, r := range rs {
		n += r.hi - r.lo + 1
	}
	i := rand.IntN(n)
	for _, r := range rs {
		if size := r.hi - r.lo + 1; i >= size {
			i -= size
			continue
		}
		return r.lo + i, nil
	}
	panic("unreachable")
}

// lock opens path and takes an exclusive flock on it without waiting: ok is false when
// another open file holds it.
func lock(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, false, fmt.Errorf("port lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("port lock %s: %w", path, err)
	}
	return f, true, nil
}

// bindable reports whether both a UDP socket and a TCP listener can bind 127.0.0.1:p now.
func bindable(p int) bool {
	a := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	c, err := net.ListenPacket("udp4", a)
	if err != nil {
		return false
	}
	c.Close()
	l, err := net.Listen("tcp4", a)
	if err != nil {
		return false
	}
	l.Close()
	return true
}
