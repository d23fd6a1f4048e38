package workload

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/interop/checker"
)

// Final records what the cluster holds after the run: a drain of every partition of the
// workload's topic (log start to high watermark) and, for the topics the metadata actor tried
// to create, the topics listed with their partitions and configs. Call it once the cluster has
// recovered; every request is retried until it succeeds, within a 2-minute hang bound.
func Final(tb testing.TB, cfg Config, topics []string) {
	tb.Helper()
	cfg.defaults()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(cfg.Client(tb))
	retry := func(what string, f func(ctx context.Context) error) {
		tb.Helper()
		for {
			rctx, rcancel := context.WithTimeout(ctx, cfg.OpTimeout)
			err := f(rctx)
			rcancel()
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				tb.Fatalf("final %s: %v", what, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	var starts, ends kadm.ListedOffsets
	retry("offsets", func(ctx context.Context) (err error) {
		if starts, err = adm.ListStartOffsets(ctx, cfg.Topic); err == nil {
			err = starts.Error()
		}
		if err == nil {
			if ends, err = adm.ListEndOffsets(ctx, cfg.Topic); err == nil {
				err = ends.Error()
			}
		}
		return err
	})
	for p := range cfg.Partitions {
		lo, ok1 := starts.Lookup(cfg.Topic, p)
		hi, ok2 := ends.Lookup(cfg.Topic, p)
		if !ok1 || !ok2 {
			tb.Fatalf("final offsets: partition %d of %s not listed", p, cfg.Topic)
		}
		cfg.Rec.AddDrain(drain(ctx, tb, cfg, p, lo.Offset, hi.Offset))
	}
	if len(topics) == 0 {
		return
	}
	final := map[string]checker.TopicState{}
	retry("topics", func(ctx context.Context) error {
		td, err := adm.ListTopics(ctx, topics...)
		if err != nil {
			return err
		}
		var listed []string
		for _, name := range slices.Sorted(maps.Keys(td)) {
			d := td[name]
			if d.Err == nil {
				final[name] = checker.TopicState{Partitions: int32(len(d.Partitions)), Configs: map[string]string{}}
				listed = append(listed, name)
			}
		}
		if len(listed) == 0 {
			return nil
		}
		rcs, err := adm.DescribeTopicConfigs(ctx, listed...)
		if err != nil {
			return err
		}
		for _, rc := range rcs {
			if rc.Err != nil {
				return rc.Err
			}
			for _, c := range rc.Configs {
				if c.Value != nil {
					final[rc.Name].Configs[c.Key] = *c.Value
				}
			}
		}
		return nil
	})
	cfg.Rec.SetFinalTopics(final)
}

// drain reads partition p from lo up to hi.
func drain(ctx context.Context, tb testing.TB, cfg Config, p int32, lo, hi int64) checker.Drain {
	tb.Helper()
	d := checker.Drain{TP: checker.TP{Topic: cfg.Topic, Partition: p}, LogStart: lo, HighWatermark: hi}
	if hi <= lo {
		return d
	}
	// Control records kept: they hold offsets too (transaction markers, a replicated
	// partition's raft no-ops), so the drain sees contiguous offsets and ends at hi even when
	// the last offsets below it are control records.
	cl := cfg.Client(tb, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: {p: kgo.NewOffset().At(lo)}}),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.KeepControlRecords())
	defer cl.Close()
	for next := lo; next < hi; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("drain %s/%d: read up to %d of [%d, %d)", cfg.Topic, p, next, lo, hi)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < hi {
				rec := checker.Rec{Offset: r.Offset, Value: string(r.Value), Control: r.Attrs.IsControl()}
				if rec.Control {
					rec.Value = ""
				}
				d.Records = append(d.Records, rec)
			}
			next = max(next, r.Offset+1)
		})
	}
	return d
}

// Check runs the checker on h; with anomalies it keeps h (KeepHistory) and fails tb.
func Check(tb testing.TB, h checker.History) checker.Report {
	tb.Helper()
	rep := checker.Check(h)
	if !rep.OK() {
		KeepHistory(tb, h)
		tb.Fatalf("checker: %s", rep.String())
	}
	return rep
}

// KeepHistory writes h as history.json into tb's artifact directory, for the post-mortem of
// a failed run (best effort).
func KeepHistory(tb testing.TB, h checker.History) {
	if f, err := os.Create(filepath.Join(tb.ArtifactDir(), "history.json")); err == nil {
		_ = h.WriteJSON(f)
		f.Close()
	}
}
