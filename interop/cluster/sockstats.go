package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A child process run with CPUProfileEnv writes, when a CPU profile stops, its mesh socket
// counters over the profiled interval beside the profile: <binary>-<pid>-<n>.sock.json
// (rx_packets, rx_bytes, rx_small, rx_reads, rx_buffers, tx_packets, tx_bytes, tx_small,
// tx_writes; see cmd/internal/cli).

// NewestSocketCounters returns the highest profile number n of pid's socket counters in dir,
// -1 when there are none yet. Take it before a profiled phase and pass it to
// SocketCountersAfter.
func NewestSocketCounters(dir string, pid int) int {
	_, n := newestSidecar(dir, pid)
	return n
}

// SocketCountersAfter waits up to timeout for pid's socket counters with a profile number
// above after (the phase's, written when its profile stops) and returns them.
func SocketCountersAfter(dir string, pid, after int, timeout time.Duration) (map[string]int64, error) {
	deadline := time.Now().Add(timeout)
	for {
		if path, n := newestSidecar(dir, pid); n > after {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			m := map[string]int64{}
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return m, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no socket counters of process %d after profile %d in %s within %v", pid, after, dir, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newestSidecar returns the path and profile number of pid's socket counters in dir with the
// highest number, or "", -1.
func newestSidecar(dir string, pid int) (string, int) {
	paths, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("*-%d-*.sock.json", pid))) // the pattern is well formed
	best, bestN := "", -1
	for _, p := range paths {
		base := strings.TrimSuffix(filepath.Base(p), ".sock.json")
		n, err := strconv.Atoi(base[strings.LastIndexByte(base, '-')+1:])
		if err == nil && n > bestN {
			best, bestN = p, n
		}
	}
	return best, bestN
}
