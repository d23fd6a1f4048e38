package gateway_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/share"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// TestShareGroupKgoChurnReleases is franz-go's TestShareGroupETL level 1 in small, with kgo
// share consumers: one releasing every tenth key on first delivery, joined later by
// accepters, a mixed releaser/accepter, a pure releaser and consumers that leave after a
// poll or two or are cancelled midway (each a rebalance), until every key is accepted. A
// released record must come back to some member however the membership changed meanwhile
// (the ETL once missed four released keys of one partition).
func TestShareGroupKgoChurnReleases(t *testing.T) {
	addr, clk := startShareServer(t, share.Config{LockDuration: 15 * time.Second, HeartbeatInterval: time.Second, AutoOffsetReset: "earliest"})
	stopClk := make(chan struct{})
	defer close(stopClk)
	go func() {
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopClk:
				return
			case <-tk.C:
				clk.Advance(50 * time.Millisecond)
			}
		}
	}()
	s := &shareClient{t: t, c: dial(t, addr)}
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "ta", NumPartitions: 3, ReplicationFactor: 1}, {Topic: "tb", NumPartitions: 1, ReplicationFactor: 1}}
	if r := s.do(ct, 7).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 || r.Topics[1].ErrorCode != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
	const n = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	accepted := map[int]int{}
	var consumed atomic.Int64
	run := func(ctx context.Context, name string, mode string, maxPolls, pollRecords int) {
		cl := kafkaclients.KgoClient(t, addr, kgo.ShareGroup("g"), kgo.ConsumeTopics("ta", "tb"), kgo.MaxBufferedRecords(10000), kgo.MaxBufferedBytes(50000))
		defer cl.Close()
		npolls := 0
		for {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			var fs kgo.Fetches
			if pollRecords > 0 {
				fs = cl.PollRecords(pctx, pollRecords)
			} else {
				fs = cl.PollFetches(pctx)
			}
			pcancel()
			got := false
			for r := range fs.RecordsAll() {
				got = true
				consumed.Add(1)
				k, _ := strconv.Atoi(string(r.Key))
				dc := r.DeliveryCount()
				switch mode {
				case "release":
					if k%10 == 0 && dc <= 1 {
						r.Ack(kgo.AckRelease)
						continue
					}
					r.Ack(kgo.AckAccept)
				case "mixed":
					if k%5 == 0 && dc <= 1 {
						r.Ack(kgo.AckRelease)
						continue
					}
				case "purerel":
					r.Ack(kgo.AckRelease)
					continue
				case "explicit":
					r.Ack(kgo.AckAccept)
				}
				mu.Lock()
				accepted[k]++
				mu.Unlock()
			}
			if mode == "mixed" && got {
				cl.MarkAcks(kgo.AckAccept)
			}
			fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
			if err := cl.FlushAcks(fctx); err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Logf("%s: flush acks: %v", name, err)
			}
			fcancel()
			if got && maxPolls > 0 {
				if npolls++; npolls >= maxPolls {
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
	prod := kafkaclients.KgoClient(t, addr)
	go func() {
		for i := range n {
			topic := "ta"
			if i%2 != 0 {
				topic = "tb"
			}
			prod.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")}, nil)
		}
	}()
	var wg sync.WaitGroup
	c1ctx, c1cancel := context.WithCancel(ctx)
	wg.Go(func() { run(c1ctx, "c1-release", "release", -1, 0) })
	for consumed.Load() < n/5 && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	c2ctx, c2cancel := context.WithCancel(ctx)
	wg.Go(func() { run(c2ctx, "c2-auto", "auto", -1, 25) })
	wg.Go(func() { run(ctx, "c3-explicit", "explicit", -1, 0) })
	wg.Go(func() { run(ctx, "c3b-mixed", "mixed", -1, 15) })
	c1cancel()
	wg.Go(func() { run(ctx, "c4-release", "release", -1, 0) })
	wg.Go(func() { run(ctx, "c5-purerel", "purerel", 3, 5) })
	wg.Go(func() { run(ctx, "c6-bail1", "auto", 1, 0) })
	wg.Go(func() { run(ctx, "c7-bail2", "explicit", 2, 3) })
	for consumed.Load() < n/2 && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	c2cancel()
	wg.Go(func() { run(ctx, "c9-explicit", "explicit", -1, 0) })
	start := time.Now()
	for ctx.Err() == nil {
		mu.Lock()
		k := len(accepted)
		mu.Unlock()
		if k >= n {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	var missing []int
	for i := range n {
		if accepted[i] == 0 {
			missing = append(missing, i)
		}
	}
	mu.Unlock()
	cancel()
	wg.Wait()
	if len(missing) > 0 {
		d := kmsg.NewPtrShareGroupDescribeRequest()
		d.GroupIDs = []string{"g"}
		dr := s.do(d, 1).(*kmsg.ShareGroupDescribeResponse)
		for _, g := range dr.Groups {
			for _, m := range g.Members {
				t.Logf("member %s epoch %d assigned %+v", m.MemberID, m.MemberEpoch, m.Assignment.TopicPartitions)
			}
		}
		t.Fatalf("%d keys never accepted (after %v): %v", len(missing), time.Since(start), missing[:min(len(missing), 20)])
	}
	t.Logf("all %d accepted in %v", n, time.Since(start))
}
