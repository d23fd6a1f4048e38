package main

import (
	"net/http"

	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/gateway/status"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/telemetry"
)

// brokerStatusPage is the broker's status page (package gateway/status), served at "/" on the
// -metrics address: the cluster as a Kafka client of this broker would see it (answered by
// the broker's own gateway.Server, which exists with or without -kafka-listen once the quorum
// gave the broker its Kafka id), its mesh peers with their paths, and its recent traces.
func brokerStatusPage(srv *cli.LateServer, ep *endpoint.Endpoint, kl *kafkaListener, recent *telemetry.Recent) http.Handler {
	return status.Handler(srv, func() status.Info {
		in := status.Info{Role: "broker", Mode: "metadata quorum member, no Kafka listener (clients use a gateway)",
			NodeID: ep.NodeID().String(), Kafka: "none",
			Peers: func() []status.MeshPeer { return cli.MeshPeers(ep.Paths()) }}
		if kl != nil {
			in.Mode, in.Kafka = "metadata quorum member, serving Kafka (direct data path)", kl.addr()
		}
		if !srv.Ready() {
			in.Mode += "; waiting for the quorum to admit it"
		}
		if recent != nil {
			in.Traces = recent.Traces
		}
		return in
	})
}
