package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// stallAfter is how long a benchmark's produce may go without a record being acknowledged
// before watchStall dumps every goroutine of the process (client and server both).
const stallAfter = 10 * time.Second

// produceAll produces n records of value to topic with cl and waits for every answer. It
// ends early with ctx: its error then carries ctx's cause (a benchmark's broker stop, see
// BenchmarkSecureListener), so a produce against a stopped broker says why instead of only
// "context canceled". A produce that has had nothing acknowledged for stallAfter leaves a
// goroutine dump (watchStall) and goes on waiting.
func produceAll(ctx context.Context, tb testing.TB, cl *kgo.Client, topic string, value []byte, n int, log *stallLog) error {
	var failed, done atomic.Int64
	var firstErr atomic.Pointer[error]
	stop := watchStall(tb, tb.Name()+"/"+topic, &done, n, log)
	defer stop()
	for range n {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, func(_ *kgo.Record, err error) {
			done.Add(1)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
			}
		})
	}
	err := cl.Flush(ctx)
	if err == nil && failed.Load() == 0 {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, ctx.Err()) {
		err = cause
	} else if err == nil {
		err = *firstErr.Load()
	}
	return fmt.Errorf("%d of %d records failed or unanswered: %w", int64(n)-done.Load()+failed.Load(), n, err)
}

// watchStall watches a produce of n records, named name, done counting the answered ones. If
// done stands still for stallAfter while records are still outstanding, it writes a goroutine
// dump (debug=2), and the client's recent debug log if log is not nil, to a file in
// os.TempDir (or $MESHKAFKA_STALL_DIR) and logs its path, once per produce, so that a stall
// leaves the evidence of who waits on what instead of a silent hang until the produce's
// context runs out. It never decides pass or fail: the produce's own context does. stop ends
// the watchdog's goroutine and waits for it.
func watchStall(b testing.TB, name string, done *atomic.Int64, n int, log *stallLog) (stop func()) {
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, since := done.Load(), time.Now()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			cur := done.Load()
			if cur != last || cur >= int64(n) {
				last, since = cur, time.Now()
				continue
			}
			if time.Since(since) < stallAfter {
				continue
			}
			dir := os.Getenv("MESHKAFKA_STALL_DIR")
			if dir == "" {
				dir = os.TempDir()
			}
			path := filepath.Join(dir, fmt.Sprintf("stall-%d.txt", time.Now().UnixNano()))
			f, err := os.Create(path)
			if err != nil {
				b.Logf("produce stalled at %d of %d records for %v; goroutine dump: %v", cur, n, stallAfter, err)
				return
			}
			fmt.Fprintf(f, "%s: %d of %d records acknowledged, none for %v\n\n", name, cur, n, time.Since(since).Round(time.Second))
			pprof.Lookup("goroutine").WriteTo(f, 2)
			if log != nil {
				fmt.Fprintf(f, "\n\nclient debug log, most recent last:\n")
				log.dump(f)
			}
			f.Close()
			b.Logf("produce stalled at %d of %d records for %v: goroutine dump in %s", cur, n, stallAfter, path)
			return // once per produce
		}
	}()
	return func() { close(quit); <-exited }
}

// stallLog keeps the last lines of the benchmark clients' kgo debug log, for stallWatchdog's
// dump. Debug logging costs CPU on every request, so it is on only with
// $MESHKAFKA_STALL_KGOLOG set (newStallLog returns nil otherwise, and a nil stallLog adds no
// client option).
type stallLog struct {
	mu    sync.Mutex
	lines []string // ring of the last stallLogLines lines
	next  int
}

const stallLogLines = 20000

func newStallLog() *stallLog {
	if os.Getenv("MESHKAFKA_STALL_KGOLOG") == "" {
		return nil
	}
	return &stallLog{lines: make([]string, 0, stallLogLines)}
}

func (l *stallLog) opts() []kgo.Opt {
	if l == nil {
		return nil
	}
	return []kgo.Opt{kgo.WithLogger(kgo.BasicLogger(l, kgo.LogLevelDebug, func() string { return time.Now().Format("15:04:05.000000 ") }))}
}

// Write takes one log line (kgo.BasicLogger writes each line in one call).
func (l *stallLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	if len(l.lines) < stallLogLines {
		l.lines = append(l.lines, string(p))
	} else {
		l.lines[l.next] = string(p)
		l.next = (l.next + 1) % stallLogLines
	}
	l.mu.Unlock()
	return len(p), nil
}

func (l *stallLog) dump(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.lines {
		io.WriteString(w, l.lines[(l.next+i)%len(l.lines)])
	}
}
