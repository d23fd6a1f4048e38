package direct_test

import (
	"context"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/gateway/direct"
)

// side is a Service that answers data ops with its name as the first partition's topic.
type side struct {
	brokerop.Unimplemented
	name string
}

func (s side) Produce(_ context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error) {
	return &brokerop.ProduceResp{Partitions: []brokerop.ProducePartitionResp{{Topic: s.name}}}, nil
}

func (s side) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	return brokerop.ProduceNow(ctx, s.Produce, req)
}

func (s side) Fetch(_ context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error) {
	return &brokerop.FetchResp{Partitions: []brokerop.FetchPartitionResp{{Topic: s.name}}}, nil
}

func (s side) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	return brokerop.FetchUnpooled(ctx, s.Fetch, req)
}

func (s side) ListOffsets(_ context.Context, req *brokerop.ListOffsetsReq) (*brokerop.ListOffsetsResp, error) {
	return &brokerop.ListOffsetsResp{Partitions: []brokerop.ListOffsetsPartitionResp{{Topic: s.name}}}, nil
}

// A data request whose partitions this broker all leads is served locally; one with any
// partition led elsewhere (or none) goes to the remote side; Stats counts both.
func TestBackendRoutesByLeadership(t *testing.T) {
	leads := func(topic string, p int32) bool { return topic == "t" && p%2 == 0 }
	b := direct.New(side{name: "remote"}, side{name: "local"}, leads)
	ctx := context.Background()
	pp := func(ps ...int32) []brokerop.ProducePartition {
		var out []brokerop.ProducePartition
		for _, p := range ps {
			out = append(out, brokerop.ProducePartition{Topic: "t", Partition: p})
		}
		return out
	}
	for _, tc := range []struct {
		parts []int32
		want  string
	}{{[]int32{0}, "local"}, {[]int32{0, 2}, "local"}, {[]int32{1}, "remote"}, {[]int32{0, 1}, "remote"}, {nil, "remote"}} {
		r, err := b.ProduceStaged(ctx, &brokerop.ProduceReq{Partitions: pp(tc.parts...)})()
		if err != nil || r.Partitions[0].Topic != tc.want {
			t.Errorf("produce %v: %+v, %v; want %s", tc.parts, r, err, tc.want)
		}
		var fps []brokerop.FetchPartition
		var lps []brokerop.ListOffsetsPartition
		for _, p := range tc.parts {
			fps = append(fps, brokerop.FetchPartition{Topic: "t", Partition: p})
			lps = append(lps, brokerop.ListOffsetsPartition{Topic: "t", Partition: p})
		}
		f, release, err := b.FetchPooled(ctx, &brokerop.FetchReq{Partitions: fps})
		if err != nil || f.Partitions[0].Topic != tc.want {
			t.Errorf("fetch %v: %+v, %v; want %s", tc.parts, f, err, tc.want)
		}
		release()
		l, err := b.ListOffsets(ctx, &brokerop.ListOffsetsReq{Partitions: lps})
		if err != nil || l.Partitions[0].Topic != tc.want {
			t.Errorf("list offsets %v: %+v, %v; want %s", tc.parts, l, err, tc.want)
		}
	}
	if r, err := b.Produce(ctx, &brokerop.ProduceReq{Partitions: pp(2)}); err != nil || r.Partitions[0].Topic != "local" {
		t.Errorf("unstaged produce: %+v, %v", r, err)
	}
	if r, err := b.Fetch(ctx, &brokerop.FetchReq{Partitions: []brokerop.FetchPartition{{Topic: "u"}}}); err != nil || r.Partitions[0].Topic != "remote" {
		t.Errorf("unpooled fetch: %+v, %v", r, err)
	}
	want := direct.Stats{LocalProduces: 3, RoutedProduces: 3, LocalFetches: 2, RoutedFetches: 4, LocalListOffsets: 2, RoutedListOffsets: 3}
	if got := b.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}
