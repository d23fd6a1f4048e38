package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/controller"
	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/gateway/cluster"
	"github.com/meshkafka/meshkafka/gateway/direct"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// directMetrics exports the Kafka listener's request counts (nil: no listener):
// meshkafka.direct.{produce,fetch,list_offsets}.{local,routed}, requests served in process by
// this broker as their partitions' leader and requests carried over the mesh to other brokers.
func directMetrics(be *direct.Backend) error {
	if be == nil {
		return nil
	}
	stat := func(f func(direct.Stats) uint64) func() int64 { return func() int64 { return int64(f(be.Stats())) } }
	return cli.ObserveGauges(map[string]func() int64{
		"meshkafka.direct.produce.local":       stat(func(s direct.Stats) uint64 { return s.LocalProduces }),
		"meshkafka.direct.produce.routed":      stat(func(s direct.Stats) uint64 { return s.RoutedProduces }),
		"meshkafka.direct.fetch.local":         stat(func(s direct.Stats) uint64 { return s.LocalFetches }),
		"meshkafka.direct.fetch.routed":        stat(func(s direct.Stats) uint64 { return s.RoutedFetches }),
		"meshkafka.direct.list_offsets.local":  stat(func(s direct.Stats) uint64 { return s.LocalListOffsets }),
		"meshkafka.direct.list_offsets.routed": stat(func(s direct.Stats) uint64 { return s.RoutedListOffsets }),
	})
}

// kafkaBackendHook, if set (tests), is given each Kafka listener's backend, by advertised
// address, to read its direct.Stats.
var kafkaBackendHook func(advertised string, be *direct.Backend)

// kafkaOptions configure the broker's own Kafka listener (the direct data path, package
// gateway/direct): off unless -kafka-listen or -kafka-listeners is given.
type kafkaOptions struct {
	listen     string
	advertised string
	sec        cli.KafkaSecurity
}

func (k *kafkaOptions) register(fs *flag.FlagSet, getenv cli.Getenv) {
	fs.StringVar(&k.listen, "kafka-listen", "", "serve Kafka clients on this TCP address too (PLAINTEXT), e.g. :9093; Metadata then points each partition at its leader broker (the direct data path); default off")
	fs.StringVar(&k.advertised, "kafka-advertised", "", "host:port clients must dial to reach this broker's Kafka listener, registered with the metadata quorum (default: the listen host, or localhost for a wildcard, and the port listened on)")
	k.sec.Register(fs, getenv, "kafka-listeners", "kafka-listen", false)
}

func (k *kafkaOptions) check() error {
	if err := k.sec.Check(k.listen, k.listen != "", 0); err != nil {
		return fmt.Errorf("kafka listener: %w", err)
	}
	if k.advertised != "" {
		if len(k.sec.Listeners) == 0 {
			return errors.New("-kafka-advertised without -kafka-listen or -kafka-listeners")
		}
		h, p, err := net.SplitHostPort(k.advertised)
		if n, perr := strconv.Atoi(p); err != nil || perr != nil || h == "" || n <= 0 || n > 65535 {
			return fmt.Errorf("-kafka-advertised %q: want host:port", k.advertised)
		}
	}
	return nil
}

// enabled reports whether the broker serves Kafka itself.
func (k *kafkaOptions) enabled() bool { return len(k.sec.Listeners) > 0 }

// kafkaListener is the bound Kafka listener socket(s) and the address advertised for them.
type kafkaListener struct {
	opts *kafkaOptions
	lns  []net.Listener
	host string
	port int // advertised port of the first listener
}

// openKafka binds the listeners (before the broker registers, so the advertised port is
// known even for :0).
func openKafka(k *kafkaOptions) (*kafkaListener, error) {
	kl := &kafkaListener{opts: k}
	for _, l := range k.sec.Listeners {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			kl.close()
			return nil, fmt.Errorf("kafka listener %s: %w", l, err)
		}
		kl.lns = append(kl.lns, ln)
	}
	kl.host, kl.port = "localhost", kl.lns[0].Addr().(*net.TCPAddr).Port
	if h, _, err := net.SplitHostPort(k.sec.Listeners[0].Addr); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			kl.host = h
		}
	}
	if k.advertised != "" {
		h, p, _ := net.SplitHostPort(k.advertised)
		kl.host, kl.port = h, atoi(p)
	}
	return kl, nil
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// addr is the advertised host:port of the first listener (what the quorum records).
func (kl *kafkaListener) addr() string { return net.JoinHostPort(kl.host, strconv.Itoa(kl.port)) }

func (kl *kafkaListener) close() {
	for _, ln := range kl.lns {
		ln.Close()
	}
}

// serveKafka serves the broker's Kafka listener in the background: once the quorum has
// assigned this broker its Kafka id (a broker not admitted yet waits), a gateway.Server
// presenting that id serves every listener, backed by direct.Backend: partitions this broker
// leads in process, the rest over the mesh through a cluster view of the quorum (this broker
// reached through memory). stop closes the listeners and waits for everything it started.
//
// A kafkaListener with no listener (the status page of a broker without -kafka-listen) makes
// the same server for in-process requests only; late, if not nil, is given the server once it
// exists.
func serveKafka(ctx context.Context, kl *kafkaListener, qn *controller.Node, ep *endpoint.Endpoint, log *slog.Logger, stdout io.Writer, late *cli.LateServer) (be *direct.Backend, stop func() error, err error) {
	self := ep.Addr()
	lsrv := brokermesh.NewServer(log, qn.Controller.Service())
	lsrv.SetGuard(qn.Guard())
	local := brokermesh.NewLocal(lsrv, controller.LocalListenerPeer)
	remote, err := cluster.New([]endpoint.NodeAddr{self}, func(a endpoint.NodeAddr) *brokermesh.Caller {
		if a.ID == self.ID {
			return brokermesh.NewCaller(local, "self")
		}
		// Broker to broker: no principal (this listener authorized the client itself).
		return brokermesh.NewCaller(brokermesh.NewMeshOpener(ep, a), a.ID.ShortString()).AsNode()
	}, log)
	if err != nil {
		local.Close()
		kl.close()
		return nil, nil, err
	}
	be = direct.New(remote, qn.Controller.Service(), qn.Broker.Leads)
	cfg := gateway.Config{Backend: be, AdvertisedHost: kl.host, AdvertisedPort: int32(kl.port), Logger: log, DirectBrokers: true}
	if err := kl.opts.sec.ServerConfig(&cfg, log); err != nil {
		local.Close()
		kl.close()
		return nil, nil, err
	}
	var users []cli.UserPassword
	if kl.opts.sec.SASLUsers != "" {
		if users, err = cli.ReadUsers(kl.opts.sec.SASLUsers); err != nil {
			local.Close()
			kl.close()
			return nil, nil, err
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var srv *gateway.Server
	served := make(chan error, len(kl.lns))
	wg.Go(func() {
		// The Kafka id exists once this broker's registration is applied here.
		var id int32
		for {
			var ok bool
			if id, ok = qn.Controller.KafkaID(); ok {
				break
			}
			select {
			case <-sctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		c := cfg
		c.NodeID = id
		s, err := gateway.NewServer(c)
		if err != nil {
			log.Error("kafka listener", "err", err)
			return
		}
		mu.Lock()
		if sctx.Err() != nil {
			mu.Unlock()
			return
		}
		srv = s
		if late != nil {
			late.Set(s, kl.addr())
		}
		for i, ln := range kl.lns {
			adv := int32(ln.Addr().(*net.TCPAddr).Port)
			if i == 0 {
				adv = int32(kl.port)
			}
			proto := kl.opts.sec.Listeners[i].Protocol
			wg.Go(func() { served <- s.ServeListener(ln, proto, adv) })
		}
		mu.Unlock()
		if len(kl.lns) > 0 {
			log.Info("serving Kafka (direct data path)", "kafka_id", id, "advertised", kl.addr())
		}
		cli.BootstrapUsersUntilDone(sctx, be, users, log, time.Second)
	})
	for i, l := range kl.opts.sec.Listeners {
		fmt.Fprintf(stdout, "kafka listener %s://%s (advertised %s)\n", l.Protocol, kl.lns[i].Addr(), kl.addr())
	}
	return be, func() error {
		mu.Lock()
		cancel()
		s := srv
		mu.Unlock()
		if s != nil {
			s.Close()
		} else {
			kl.close()
		}
		wg.Wait()
		local.Close()
		var err error
		if s != nil {
			for range kl.lns {
				if e := <-served; err == nil && e != nil && !errors.Is(e, gateway.ErrServerClosed) {
					err = e
				}
			}
		}
		return err
	}, nil
}
