package main

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/gateway/status"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// statusState is what the status page needs once the server runs.
type statusState struct {
	srv   *gateway.Server
	kafka string // host:port clients are told
}

// lateSource answers the page's requests once the server exists.
type lateSource struct{ p *atomic.Pointer[statusState] }

func (l lateSource) Local(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	st := l.p.Load()
	if st == nil {
		return nil, errors.New("the gateway is starting")
	}
	return st.srv.Local(ctx, req)
}

// statusPage is the gateway's status page (package gateway/status), served at "/" on the
// -metrics address.
func statusPage(o options, p *atomic.Pointer[statusState], ep *endpoint.Endpoint) http.Handler {
	return status.Handler(lateSource{p}, func() status.Info {
		in := status.Info{Role: "gateway", Mode: "embedded broker (one process, no mesh)"}
		if o.meshMode() {
			in.Mode = "mesh: brokers " + o.brokers
		}
		if ep != nil {
			in.NodeID = ep.NodeID().String()
		}
		if st := p.Load(); st != nil {
			in.Kafka = st.kafka
		}
		return in
	})
}
