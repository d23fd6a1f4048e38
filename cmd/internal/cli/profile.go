package cli

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
)

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
		for n := 0; ; n++ {
			<-ch
			if f != nil {
				pprof.StopCPUProfile()
				f.Close()
				f = nil
				continue
			}
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
