package main

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/gateway/status"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/telemetry"
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
func statusPage(o options, p *atomic.Pointer[statusState], ep *endpoint.Endpoint, recent *telemetry.Recent) http.Handler {
	return status.Handler(lateSource{p}, func() status.Info {
		in := status.Info{Role: "gateway", Mode: "embedded broker (one process, no mesh)"}
		if o.meshMode() {
			in.Mode = "mesh: brokers " + o.brokers
		}
		if ep != nil {
			in.NodeID = ep.NodeID().String()
			in.Peers = func() []status.MeshPeer { return cli.MeshPeers(ep.Paths()) }
		}
		if st := p.Load(); st != nil {
			in.Kafka = st.kafka
		}
		if recent != nil {
			in.Traces = recent.Traces
		}
		return in
	})
}

// lagMetrics exports meshkafka.consumer.lag (gauge, per group and topic: end offset minus
// committed offset, summed over the partitions), computed at each scrape from the same
// requests as the status page.
func lagMetrics(p *atomic.Pointer[statusState]) error {
	m := telemetry.Meter()
	lag, err := m.Int64ObservableGauge("meshkafka.consumer.lag", metric.WithDescription("consumer group lag in records, per group and topic"))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		if p.Load() == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for _, l := range status.Lags(ctx, lateSource{p}) {
			o.ObserveInt64(lag, l.Lag, metric.WithAttributes(attribute.String("group", l.Group), attribute.String("topic", l.Topic)))
		}
		return nil
	}, lag)
	return err
}
