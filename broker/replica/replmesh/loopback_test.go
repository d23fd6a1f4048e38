package replmesh

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// TestLoopback: three Engines on real endpoints bound to 127.0.0.1 (real QUIC over UDP, the
// wall clock) replicate 10 groups: broker 1 campaigns for each, proposals commit and every
// replica applies them. Waits are unbounded polls (the test's timeout is the limit): nothing
// here decides pass or fail by time.
func TestLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets")
	}
	const groups = 10
	var bs []*broker
	for i := range 3 {
		b := &broker{id: uint64(i + 1), sk: key.GenerateSecretKey(),
			sms: map[replica.GroupID]*sm{}, stores: map[replica.GroupID]*replica.MemoryStorage{}}
		ep, err := endpoint.New(endpoint.Options{SecretKey: b.sk, BindAddr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		b.ep = ep
		b.tr = New(ep, Config{Trust: b.trusted.Trusts, ID: b.id, Log: slog.New(slog.DiscardHandler)})
		b.eng, err = replica.New(replica.Config{ID: b.id, Transport: b.tr, Sync: func() error { return nil },
			Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		b.tr.Attach(b.eng)
		t.Cleanup(b.stop)
		bs = append(bs, b)
	}
	meet(bs...)
	run(t, groups, bs...)
	ctx := t.Context()
	poll := func(cond func() bool) {
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	for i := range groups {
		g := gid(i)
		bs[0].eng.Campaign(g)
		poll(func() bool {
			st, _ := bs[0].eng.Status(g)
			if st.Leader == 0 {
				bs[0].eng.Campaign(g) // a lost election: try again
			}
			return st.Leader != 0
		})
	}
	for i := range groups {
		g := gid(i)
		d := fmt.Sprintf("loop-%d", i)
		var p *replica.Proposal
		for p == nil { // a leadership change in between (a loaded machine): ask the new leader
			var lead *broker
			poll(func() bool {
				for _, b := range bs {
					if st, _ := b.eng.Status(g); st.Leader == b.id {
						lead = b
						return true
					}
				}
				return false
			})
			var err error
			if p, err = lead.eng.Propose(ctx, g, []byte(d)); err == nil {
				err = <-p.Committed
			}
			if errors.Is(err, replica.ErrNotLeader) && !errors.Is(err, replica.ErrStopped) {
				p = nil
				continue
			}
			if err != nil {
				t.Fatalf("group %d: %v", i, err)
			}
		}
		for _, b := range bs {
			poll(func() bool { last, _ := b.sms[g].applied(); return last >= p.Index })
			// d once, or more if a retried proposal's first attempt committed after all.
			if _, got := b.sms[g].applied(); len(got) == 0 || slices.ContainsFunc(got, func(s string) bool { return s != d }) {
				t.Fatalf("broker %d group %d applied %q", b.id, i, got)
			}
		}
	}
	for _, b := range bs {
		if st := b.tr.Stats(); st.Delivered == 0 || st.Refused != 0 {
			t.Errorf("broker %d: %+v", b.id, st)
		}
	}
}
