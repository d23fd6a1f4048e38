//go:build unix

package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"github.com/meshkafka/meshkafka/broker"
)

// printStatsOnSignal prints one line of the embedded broker's counters on stdout each time
// the process gets SIGUSR1, for benchmarks that run the gateway as a child process:
//
//	broker stats: partitions=N open_logs=N open_files=N produce_requests=N fsyncs=N checkpoint_fsyncs=N filesystem_syncs=N heap_bytes=N goroutines=N
//
// heap_bytes is the live heap after a forced garbage collection. The returned function stops
// the owned goroutine and waits for it.
func printStatsOnSignal(b *broker.Broker, stdout io.Writer) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-sig:
				s := b.Stats()
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				fmt.Fprintf(stdout, "broker stats: partitions=%d open_logs=%d open_files=%d produce_requests=%d fsyncs=%d checkpoint_fsyncs=%d filesystem_syncs=%d heap_bytes=%d goroutines=%d\n",
					s.Partitions, s.OpenLogs, s.OpenFiles, s.ProduceRequests, s.Fsyncs, s.CheckpointFsyncs, s.FilesystemSyncs, ms.HeapAlloc, runtime.NumGoroutine())
			}
		}
	})
	return func() {
		signal.Stop(sig)
		close(done)
		wg.Wait()
	}
}
