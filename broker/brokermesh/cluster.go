package brokermesh

import (
	"errors"
	"log/slog"
	"sort"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// Cluster is the gateway's view of the brokers: it implements every op (the gateway's
// Backend and GroupBackend) by carrying it to the broker that owns it.
//
// Today every op goes to one broker, the seed with the smallest NodeId, so that every gateway
// given the same seeds picks the same one (the lookup stays behind this type so that mDNS and
// gossip can feed it later).
type Cluster struct {
	*Caller
	brokers []endpoint.NodeAddr
	log     *slog.Logger
}

// NewCluster builds a cluster view from broker seeds; dial makes the caller for one broker.
func NewCluster(seeds []endpoint.NodeAddr, dial func(endpoint.NodeAddr) *Caller, log *slog.Logger) (*Cluster, error) {
	if len(seeds) == 0 {
		return nil, errors.New("brokermesh: no brokers")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bs := append([]endpoint.NodeAddr(nil), seeds...)
	sort.Slice(bs, func(i, j int) bool { return bs[i].ID.String() < bs[j].ID.String() })
	return &Cluster{Caller: dial(bs[0]), brokers: bs, log: log}, nil
}
