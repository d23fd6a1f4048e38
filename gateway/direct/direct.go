package direct

import (
	"context"
	"sync/atomic"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Backend serves a broker's own Kafka listener (see the package doc). Remote and Local are
// required; Leads reports whether this broker leads a partition now.
type Backend struct {
	// Remote is the gateway-side cluster view (cluster.Cluster) every op may go to.
	brokerop.Service
	// Local is this broker's service in process (the one its mesh server dispatches to).
	Local brokerop.Service
	// Leads reports whether this broker serves a partition's data ops itself now.
	Leads func(topic string, partition int32) bool

	stats stats
}

// New returns a Backend over remote and local.
func New(remote, local brokerop.Service, leads func(topic string, partition int32) bool) *Backend {
	return &Backend{Service: remote, Local: local, Leads: leads}
}

// Stats counts data requests by where they were served.
type Stats struct {
	LocalProduces, RoutedProduces       uint64
	LocalFetches, RoutedFetches         uint64
	LocalListOffsets, RoutedListOffsets uint64
}

type stats struct {
	localProduce, routedProduce atomic.Uint64
	localFetch, routedFetch     atomic.Uint64
	localList, routedList       atomic.Uint64
}

// Stats returns the counts so far.
func (b *Backend) Stats() Stats {
	s := &b.stats
	return Stats{
		LocalProduces: s.localProduce.Load(), RoutedProduces: s.routedProduce.Load(),
		LocalFetches: s.localFetch.Load(), RoutedFetches: s.routedFetch.Load(),
		LocalListOffsets: s.localList.Load(), RoutedListOffsets: s.routedList.Load(),
	}
}

// local reports whether every partition of a request (n of them, at(i) each) is led here,
// and counts the request in here or routed accordingly.
func (b *Backend) local(n int, at func(i int) (string, int32), here, routed *atomic.Uint64) bool {
	if b.allLed(n, at) {
		here.Add(1)
		return true
	}
	routed.Add(1)
	return false
}

// allLed reports whether there are partitions (n, at(i) each) and all are led here.
func (b *Backend) allLed(n int, at func(i int) (string, int32)) bool {
	if n == 0 {
		return false
	}
	for i := range n {
		if !b.Leads(at(i)) {
			return false
		}
	}
	return true
}

func (b *Backend) produceLocal(req *brokerop.ProduceReq) bool {
	return b.local(len(req.Partitions), func(i int) (string, int32) { return req.Partitions[i].Topic, req.Partitions[i].Partition },
		&b.stats.localProduce, &b.stats.routedProduce)
}

func (b *Backend) fetchLocal(req *brokerop.FetchReq) bool {
	return b.local(len(req.Partitions), func(i int) (string, int32) { return req.Partitions[i].Topic, req.Partitions[i].Partition },
		&b.stats.localFetch, &b.stats.routedFetch)
}

// Produce implements brokerop.Service.
func (b *Backend) Produce(ctx context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error) {
	if b.produceLocal(req) {
		return b.Local.Produce(ctx, req)
	}
	return b.Service.Produce(ctx, req)
}

// ProduceStaged implements brokerop.Service: the append happens in the call, in request order,
// on whichever side serves it.
func (b *Backend) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	if b.produceLocal(req) {
		return b.Local.ProduceStaged(ctx, req)
	}
	return b.Service.ProduceStaged(ctx, req)
}

// Fetch implements brokerop.Service.
func (b *Backend) Fetch(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error) {
	if b.fetchLocal(req) {
		return b.Local.Fetch(ctx, req)
	}
	return b.Service.Fetch(ctx, req)
}

// FetchPooled implements brokerop.Service.
func (b *Backend) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	if b.fetchLocal(req) {
		return b.Local.FetchPooled(ctx, req)
	}
	return b.Service.FetchPooled(ctx, req)
}

// ListOffsets implements brokerop.Service.
func (b *Backend) ListOffsets(ctx context.Context, req *brokerop.ListOffsetsReq) (*brokerop.ListOffsetsResp, error) {
	if b.local(len(req.Partitions), func(i int) (string, int32) { return req.Partitions[i].Topic, req.Partitions[i].Partition },
		&b.stats.localList, &b.stats.routedList) {
		return b.Local.ListOffsets(ctx, req)
	}
	return b.Service.ListOffsets(ctx, req)
}
