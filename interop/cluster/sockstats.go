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

// SocketMark is where the socket counters of some processes stood before a profiled phase:
// the newest counters each had written (MarkSockets).
type SocketMark struct {
	dir    string
	pids   []int
	newest []int // per pid, its newest profile number, -1 for none
}

// MarkSockets records, for each of pids, which socket counters in dir are already there.
// Take it before the phase's profiles start; Counters then returns the phase's.
func MarkSockets(dir string, pids ...int) SocketMark {
	m := SocketMark{dir: dir, pids: pids}
	for _, pid := range pids {
		_, n := newestSidecar(dir, pid)
		m.newest = append(m.newest, n)
	}
	return m
}

// Counters waits up to timeout for each process's counters newer than the mark (written
// when its profile of the phase stops) and returns them in the order of the mark's pids.
func (m SocketMark) Counters(timeout time.Duration) ([]map[string]int64, error) {
	deadline := time.Now().Add(timeout)
	out := make([]map[string]int64, len(m.pids))
	for i, pid := range m.pids {
		for {
			path, n := newestSidecar(m.dir, pid)
			if n > m.newest[i] {
				b, err := os.ReadFile(path)
				if err != nil {
					return nil, err
				}
				if err := json.Unmarshal(b, &out[i]); err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("no socket counters of process %d after profile %d in %s within %v", pid, m.newest[i], m.dir, timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return out, nil
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
