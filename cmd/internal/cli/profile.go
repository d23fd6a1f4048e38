package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sync/atomic"
	"syscall"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// profiledEndpoint is the mesh endpoint whose socket counters a CPU profile's sidecar reports
// (ProfileEndpoint), nil when the process has none.
var profiledEndpoint atomic.Pointer[endpoint.Endpoint]

// ProfileEndpoint names the endpoint whose socket counters (endpoint.SocketStats) each CPU
// profile of CPUProfileEnv also reports: over the profiled interval, in
// <dir>/<binary>-<pid>-<n>.sock.json beside the profile, so a benchmark of real processes
// sees the packets, ACK-sized datagrams and syscalls behind the CPU.
func ProfileEndpoint(ep *endpoint.Endpoint) { profiledEndpoint.Store(ep) }

// socketStats returns the profiled endpoint's counters (zero without one).
func socketStats() endpoint.SocketStats {
	if ep := profiledEndpoint.Load(); ep != nil {
		return ep.SocketStats()
	}
	return endpoint.SocketStats{}
}

// writeSocketDelta writes the counters' change since start to path as JSON.
func writeSocketDelta(path string, start endpoint.SocketStats) error {
	ep := profiledEndpoint.Load()
	if ep == nil {
		return nil
	}
	end := ep.SocketStats()
	d := map[string]int64{
		"rx_packets": end.RxPackets - start.RxPackets, "rx_bytes": end.RxBytes - start.RxBytes, "rx_small": end.RxSmall - start.RxSmall,
		"rx_reads": end.RxReads - start.RxReads, "rx_buffers": end.RxBuffers - start.RxBuffers,
		"tx_packets": end.TxPackets - start.TxPackets, "tx_bytes": end.TxBytes - start.TxBytes, "tx_small": end.TxSmall - start.TxSmall,
		"tx_writes": end.TxWrites - start.TxWrites,
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	tmp := path + ".tmp" // renamed into place: a reader never sees a part of it
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// CPUProfileEnv names a directory: when set, each SIGUSR2 the process receives starts a CPU
// profile written to <dir>/<binary>-<pid>-<n>.prof, and the next one stops and closes it
// (benchmarks of real processes, e.g. interop/repl's BenchmarkReplProduce with
// REPL_BENCH_PROFILE, profile exactly their measured interval this way).
const CPUProfileEnv = "MESHKAFKA_CPUPROFILE_DIR"

// profileOnSignal starts the SIGUSR2 toggle of CPUProfileEnv when it is set.
func profileOnSignal(name string) {
	dir := os.Getenv(CPUProfileEnv)
	if dir == "" {
		return
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR2)
	go func() {
		var f *os.File
		var sock endpoint.SocketStats // the counters when the running profile started
		for n := 0; ; n++ {
			<-ch
			if f != nil {
				pprof.StopCPUProfile()
				f.Close()
				if err := writeSocketDelta(f.Name()[:len(f.Name())-len(".prof")]+".sock.json", sock); err != nil {
					fmt.Fprintln(os.Stderr, name+": socket counters:", err)
				}
				f = nil
				continue
			}
			sock = socketStats()
			var err error
			f, err = os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d-%d.prof", name, os.Getpid(), n)))
			if err == nil {
				err = pprof.StartCPUProfile(f)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, name+": cpu profile:", err)
				if f != nil {
					f.Close()
					f = nil
				}
			}
		}
	}()
}
