package kafkaclients

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ProcessCPU returns the CPU time process pid (0: this process) has used so far: the sum
// over its threads of their time on CPU (/proc/PID/task/*/schedstat, nanoseconds). ok is
// false where /proc does not have it. Benchmarks divide the difference over a timed phase
// by the records moved: on a machine whose cores the client and the servers share, that
// figure says what each process costs independently of how busy the machine was.
func ProcessCPU(pid int) (d time.Duration, ok bool) {
	proc := "self"
	if pid != 0 {
		proc = strconv.Itoa(pid)
	}
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%s/task/*/schedstat", proc))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that just exited
		}
		fs := strings.Fields(string(b))
		if len(fs) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, false
		}
		d += time.Duration(ns)
		ok = true
	}
	return d, ok
}

// CPUMeter measures the CPU time a set of processes uses between its creation and Per.
type CPUMeter struct {
	pids  []int
	start time.Duration
	ok    bool
}

// StartCPU starts measuring the processes pids (0 is this process).
func StartCPU(pids ...int) *CPUMeter {
	m := &CPUMeter{pids: pids}
	m.start, m.ok = m.now()
	return m
}

func (m *CPUMeter) now() (time.Duration, bool) {
	var sum time.Duration
	for _, pid := range m.pids {
		d, ok := ProcessCPU(pid)
		if !ok {
			return 0, false
		}
		sum += d
	}
	return sum, true
}

// Per returns the CPU time used since StartCPU divided by n, in nanoseconds; ok is false
// when it could not be read.
func (m *CPUMeter) Per(n int) (ns float64, ok bool) {
	end, ok := m.now()
	if !ok || !m.ok || n <= 0 {
		return 0, false
	}
	return float64(end-m.start) / float64(n), true
}
