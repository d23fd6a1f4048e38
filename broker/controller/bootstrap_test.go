package controller

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// probeSvc answers ClusterBrokers with what answer says; every other op is unimplemented.
type probeSvc struct {
	brokerop.Unimplemented
	answer func() (*brokerop.ClusterBrokersResp, error)
}

func (probeSvc) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	return func() (*brokerop.ProduceResp, error) { return brokerop.Unimplemented{}.Produce(ctx, req) }
}

func (probeSvc) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	r, err := brokerop.Unimplemented{}.Fetch(ctx, req)
	return r, func() {}, err
}

func (p probeSvc) ClusterBrokers(context.Context, *brokerop.ClusterBrokersReq) (*brokerop.ClusterBrokersResp, error) {
	return p.answer()
}

// threeSeeds returns three seed addresses sorted by NodeId text: [0] is the one that may
// found a cluster.
func threeSeeds() []endpoint.NodeAddr {
	var s []endpoint.NodeAddr
	for range 3 {
		s = append(s, endpoint.NodeAddr{ID: key.GenerateSecretKey().Public()})
	}
	sort.Slice(s, func(i, j int) bool { return s[i].ID.String() < s[j].ID.String() })
	return s
}

// A seed that does not answer is asked again: the smallest seed founds a cluster only once
// every other seed has said it knows none (a wiped broker must not found a second cluster
// beside its peers' because one probe went unanswered).
func TestBootstrapWaitsForEverySeed(t *testing.T) {
	seeds := threeSeeds()
	var mu sync.Mutex
	asked := map[key.PublicKey]int{}
	dial := func(a endpoint.NodeAddr) brokerop.Service {
		return probeSvc{answer: func() (*brokerop.ClusterBrokersResp, error) {
			mu.Lock()
			defer mu.Unlock()
			asked[a.ID]++
			if a.ID == seeds[2].ID && asked[a.ID] <= 3 {
				return nil, errors.New("no route")
			}
			return &brokerop.ClusterBrokersResp{}, nil
		}}
	}
	if !bootstraps(context.Background(), seeds[0], seeds, dial, time.Millisecond, slog.New(slog.DiscardHandler)) {
		t.Fatal("the smallest seed did not found a cluster although every seed answered that it knows none")
	}
	if asked[seeds[2].ID] != 4 {
		t.Fatalf("the silent seed was asked %d times, want 4 (three failures, then its answer)", asked[seeds[2].ID])
	}
	if asked[seeds[1].ID] != 1 {
		t.Fatalf("a seed that answered was asked %d times, want 1", asked[seeds[1].ID])
	}
}

// One seed that knows a cluster is enough to join it; the others need not answer.
func TestBootstrapJoinsAKnownCluster(t *testing.T) {
	seeds := threeSeeds()
	dial := func(a endpoint.NodeAddr) brokerop.Service {
		return probeSvc{answer: func() (*brokerop.ClusterBrokersResp, error) {
			if a.ID == seeds[1].ID {
				return nil, errors.New("down")
			}
			return &brokerop.ClusterBrokersResp{ClusterID: "c1"}, nil
		}}
	}
	if bootstraps(context.Background(), seeds[0], seeds, dial, time.Millisecond, slog.New(slog.DiscardHandler)) {
		t.Fatal("founded a new cluster while a seed knows one")
	}
}

// With the other seeds silent, the smallest seed keeps waiting (never founds a cluster) until
// its context ends; the others never found one.
func TestBootstrapNeverGuesses(t *testing.T) {
	seeds := threeSeeds()
	dial := func(endpoint.NodeAddr) brokerop.Service {
		return probeSvc{answer: func() (*brokerop.ClusterBrokersResp, error) { return nil, errors.New("down") }}
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	counting := func(a endpoint.NodeAddr) brokerop.Service {
		calls++
		if calls == 20 {
			cancel()
		}
		return dial(a)
	}
	if bootstraps(ctx, seeds[0], seeds, counting, time.Millisecond, slog.New(slog.DiscardHandler)) {
		t.Fatal("founded a cluster without an answer from the other seeds")
	}
	if bootstraps(context.Background(), seeds[1], seeds, dial, time.Millisecond, slog.New(slog.DiscardHandler)) {
		t.Fatal("a seed that is not the smallest founded a cluster")
	}
}
