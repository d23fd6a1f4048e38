package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/meshnode"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/kafkapipe"
	"github.com/meshkafka/meshkafka/mesh/ticket"
)

// serveKafkaOverMesh serves Kafka connections that arrive over the mesh (-kafka-over-mesh) on
// ep, or, with an embedded broker (ep nil), on a mesh endpoint of its own. Each connection is
// told to dial the address its opener advertised (package mesh/kafkapipe), so a client behind
// `mesh kafka-proxy` keeps coming back through the proxy. The mesh already authenticates the
// node (Ed25519) and encrypts; the Kafka layer sees a PLAINTEXT connection (SASL and ACLs of the
// gateway's Kafka listeners are not applied to it: decision documented in the README).
func serveKafkaOverMesh(ctx context.Context, o options, getenv cli.Getenv, log *slog.Logger, srv *gateway.Server, ep *endpoint.Endpoint, stdout io.Writer) (stop func(), err error) {
	var node *meshnode.Node
	if ep == nil {
		sk, err := identity(o)
		if err != nil {
			return nil, err
		}
		if err := o.reachOptions.check(); err != nil {
			return nil, err
		}
		node, err = meshnode.Open(meshnode.Config{SecretKey: sk, BindAddr: o.meshBind, Reach: o.Reach.Reach, Logger: log,
			DisableGRO: cli.DisableGRO(getenv), MDNSConns: mdnsConns, IdleTimeout: cli.PeerIdleTimeout})
		if err != nil {
			return nil, err
		}
		ep = node.Endpoint
	}
	ln := kafkapipe.Listen(ep, nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			kc := c.(*kafkapipe.Conn)
			host, port, err := net.SplitHostPort(kc.Advertise)
			p, perr := strconv.Atoi(port)
			if err != nil || perr != nil || p <= 0 || p > 65535 {
				log.Warn("kafka over mesh: bad advertised address", "peer", kc.Peer, "advertise", kc.Advertise)
				kc.Close()
				continue
			}
			srv.ServeConnAdvertised(kc, gateway.Plaintext, host, int32(p))
		}
	})
	a := ep.Addr()
	if a.RelayURL == "" {
		a.RelayURL = o.Relay
	}
	fmt.Fprintf(stdout, "kafka over mesh: from anywhere, run: mesh kafka-proxy %s   (then kcat -b 127.0.0.1:9092 -L)\n", ticket.Encode(a))
	return func() {
		ln.Close()
		wg.Wait()
		if node != nil {
			node.Close()
		}
	}, nil
}
