package broker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// The process-level crash test of the log cleaner: a child process (this test binary, re-run
// with compactChildEnv set) produces keyed records with acks=all to a compacted topic on a
// real directory and runs the cleaner after every few batches, printing every acknowledged
// record; the parent kills it with SIGKILL at a random moment (mid-clean or mid-produce),
// opens the directory itself and checks it, then starts the next child on it.

const compactChildEnv = "MESHKAFKA_COMPACT_CHILD_DIR"

func compactChildConfig(dir string) Config {
	return Config{Dir: dir, CleanerBackoff: -1, RetentionCheckInterval: -1, FlushInterval: -1, TxnCheckInterval: -1,
		SegmentBytes: 4096, Logger: slog.New(slog.DiscardHandler)}
}

var compactKillTopicConfigs = map[string]string{"cleanup.policy": "compact", "segment.bytes": "4096",
	"min.cleanable.dirty.ratio": "0", "delete.retention.ms": "3600000"}

// TestCompactKill9Child is the child's body; it runs only when the parent starts it.
func TestCompactKill9Child(t *testing.T) {
	dir := os.Getenv(compactChildEnv)
	if dir == "" {
		t.Skip("the child of TestCompactKill9")
	}
	cfg := compactChildConfig(dir)
	cfg.CleanerIOBytesPerSecond = 200e3 // cleanings take a while: most kills land in one
	b, err := Open(cfg)
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	b.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "c", NumPartitions: 1, ReplicationFactor: -1, Configs: compactKillTopicConfigs}}})
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for n := 0; ; n++ {
		var recs []krec
		for range 20 {
			k := fmt.Sprintf("k%02d", r.IntN(50))
			recs = append(recs, krec{key: k, value: sp(k + "|" + strconv.Itoa(r.IntN(1e6)))})
		}
		resp, err := b.Produce(ctx, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{{Topic: "c", Partition: 0, Records: keyedBatch(1000, recs...)}}})
		if err != nil || resp.Partitions[0].ErrorCode != 0 {
			fmt.Fprintln(out, "produce failed:", err, resp)
			out.Flush()
			os.Exit(4)
		}
		for i, x := range recs {
			fmt.Fprintf(out, "acked %s %d\n", x.key, resp.Partitions[0].BaseOffset+int64(i))
		}
		out.Flush()
		if n%5 == 4 {
			fmt.Fprintln(out, "cleaning")
			out.Flush()
			if _, err := b.Compact(ctx); err != nil {
				fmt.Fprintln(out, "compact failed:", err)
				out.Flush()
				os.Exit(5)
			}
			fmt.Fprintln(out, "cleaned")
			out.Flush()
		}
	}
}

// TestCompactKill9: COMPACT_KILL_CYCLES cycles (default 20) of child, SIGKILL at a random
// moment, and a check by the parent: the directory opens; every record read has its key's
// value; offsets only grow; for every key, a record at or after its last acknowledged offset
// is there (the cleaner never loses a key's latest record); and a cleaning by the parent
// leaves exactly one record per key below the active segment, the latest.
func TestCompactKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("process kill test skipped in -short mode")
	}
	cycles := 20
	if v, err := strconv.Atoi(os.Getenv("COMPACT_KILL_CYCLES")); err == nil {
		cycles = v
	}
	dir := t.TempDir()
	acked := map[string]int64{}
	r := rand.New(rand.NewPCG(11, 11))
	cleaned, midClean := 0, 0
	for cycle := range cycles {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCompactKill9Child$", "-test.count=1")
		cmd.Env = append(os.Environ(), compactChildEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		if !lines.Scan() || lines.Text() != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("cycle %d: child did not start: %q", cycle, lines.Text())
		}
		readErr := make(chan error, 1)
		var inClean bool
		go func() {
			for lines.Scan() {
				switch lines.Text() {
				case "cleaning":
					inClean = true
					continue
				case "cleaned":
					inClean = false
					continue
				}
				f := strings.Fields(lines.Text())
				if len(f) != 3 || f[0] != "acked" {
					readErr <- fmt.Errorf("child: %s", lines.Text())
					io.Copy(io.Discard, stdout)
					return
				}
				off, _ := strconv.ParseInt(f[2], 10, 64)
				acked[f[1]] = max(acked[f[1]], off)
			}
			readErr <- nil
		}()
		// The moment of the kill is random; what is checked after it does not depend on it.
		time.Sleep(time.Duration(50+r.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if err := <-readErr; err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		if inClean {
			midClean++
		}
		what := fmt.Sprintf("cycle %d", cycle)
		e := &env{t: t, cfg: compactChildConfig(dir), clock: newClock()}
		e.open()
		check := func(when string) []got {
			recs := e.readCompacted("c")
			latest := map[string]int64{}
			prev := int64(-1)
			for _, g := range recs {
				if g.off <= prev || g.null || !strings.HasPrefix(g.value, g.key+"|") {
					t.Fatalf("%s, %s: record %+v after offset %d", what, when, g, prev)
				}
				prev = g.off
				latest[g.key] = g.off
			}
			for k, off := range acked {
				if latest[k] < off {
					t.Fatalf("%s, %s: key %s acknowledged at offset %d, latest record read at %d", what, when, k, off, latest[k])
				}
			}
			return recs
		}
		before := check("after the kill")
		end := activeBaseOf(e.partLog("c", 0))
		st, err := e.b.Compact(context.Background())
		if err != nil {
			t.Fatalf("%s: Compact: %v", what, err)
		}
		cleaned += st.Swapped
		var want []got
		lastBelow := map[string]int64{}
		for _, g := range before {
			if g.off < end {
				lastBelow[g.key] = g.off
			}
		}
		for _, g := range before {
			if g.off >= end || lastBelow[g.key] == g.off {
				want = append(want, g)
			}
		}
		check("after cleaning")
		sameRecords(t, e.readCompacted("c"), want, what+", cleaned")
		if err := e.b.Close(); err != nil {
			t.Fatalf("%s: close: %v", what, err)
		}
	}
	if cleaned == 0 {
		t.Fatal("no cleaning swapped anything in")
	}
	t.Logf("%d of %d kills landed during a cleaning", midClean, cycles)
}
