package main

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/gateway/status"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/telemetry"
)

// statusPage is the gateway's status page (package gateway/status), served at "/" on the
// -metrics address.
func statusPage(o options, p *cli.LateServer, ep *endpoint.Endpoint, recent *telemetry.Recent) http.Handler {
	return status.Handler(p, func() status.Info {
		in := status.Info{Role: "gateway", Mode: "embedded broker (one process, no mesh)"}
		if o.meshMode() {
			in.Mode = "mesh: brokers " + o.brokers
		}
		if ep != nil {
			in.NodeID = ep.NodeID().String()
			in.Peers = func() []status.MeshPeer { return cli.MeshPeers(ep.Paths()) }
		}
		in.Kafka = p.Addr()
		if recent != nil {
			in.Traces = recent.Traces
		}
		return in
	})
}

// lagMetrics exports meshkafka.consumer.lag (gauge, per group and topic: end offset minus
// committed offset, summed over the partitions), computed at each scrape from the same
// requests as the status page.
func lagMetrics(p *cli.LateServer) error {
	m := telemetry.Meter()
	lag, err := m.Int64ObservableGauge("meshkafka.consumer.lag", metric.WithDescription("consumer group lag in records, per group and topic"))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		if !p.Ready() {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for _, l := range status.Lags(ctx, p) {
			o.ObserveInt64(lag, l.Lag, metric.WithAttributes(attribute.String("group", l.Group), attribute.String("topic", l.Topic)))
		}
		return nil
	}, lag)
	return err
}
