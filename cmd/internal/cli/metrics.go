package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
	"github.com/meshkafka/meshkafka/telemetry"
)

// MetricsVar registers -metrics, the address of the Prometheus /metrics endpoint (default
// off; e.g. 127.0.0.1:9100).
func MetricsVar(fs interface {
	StringVar(p *string, name, value, usage string)
}, p *string) {
	fs.StringVar(p, "metrics", "", "serve Prometheus /metrics (OpenTelemetry) on this address, e.g. 127.0.0.1:9100; default off")
}

// ServeMetrics sets up the metrics pipeline for service and serves /metrics on addr until
// stop is called; url is the /metrics URL (addr with its port resolved). It logs the URL, and
// prints it on out unless out is nil.
//
// root, if not nil, is served at "/" beside /metrics (the gateway's status page).
func ServeMetrics(addr, service string, out io.Writer, log *slog.Logger, root http.Handler) (url string, stop func(), err error) {
	m, err := telemetry.SetupMetrics(service)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = m.Shutdown(context.Background())
		return "", nil, fmt.Errorf("-metrics: %w", err)
	}
	url = "http://" + ln.Addr().String() + "/metrics"
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	if root != nil {
		mux.Handle("/", root)
	}
	shutdown := ServeHTTP(ln, mux, 5*time.Second, func(err error) { log.Warn("metrics server", "err", err) })
	log.Info("serving metrics", "url", url)
	if out != nil {
		fmt.Fprintf(out, "metrics: %s\n", url)
	}
	return url, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown(ctx)
		_ = m.Shutdown(ctx)
	}, nil
}

// ServeHTTP serves h on ln (headers read within readHeaderTimeout) until shutdown is
// called, which shuts the server down gracefully within ctx and returns once it stopped.
// An error that stops serving other than the shutdown goes to failed.
func ServeHTTP(ln net.Listener, h http.Handler, readHeaderTimeout time.Duration, failed func(error)) (shutdown func(ctx context.Context)) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			failed(err)
		}
	}()
	return func(ctx context.Context) {
		_ = srv.Shutdown(ctx)
		<-done
	}
}

// BrokerMetrics exports b's storage counters (read at each scrape):
//
//	meshkafka.broker.partitions       gauge      partitions of all topics
//	meshkafka.broker.open_logs        gauge      partition logs open now
//	meshkafka.broker.open_files       gauge      descriptors the logs and journal hold
//	meshkafka.broker.produce.requests counter    produce calls
//	meshkafka.wal.fsyncs              counter    commit-journal fsyncs (group commits)
//	meshkafka.wal.checkpoint_fsyncs   counter    partition files fsynced by checkpoints
//	meshkafka.wal.filesystem_syncs    counter    whole-filesystem syncs (syncfs) by checkpoints
//	                                             of many partitions (instead of their fsyncs)
//	meshkafka.replica.leaders         gauge      replicated partitions this broker leads
//	meshkafka.replica.under_replicated gauge     of those, with fewer in-sync replicas than
//	                                             replicas (Kafka's UnderReplicatedPartitions)
//	meshkafka.replica.raft.messages   counter    partition raft messages, direction=sent|
//	                                             received|dropped
//	meshkafka.replica.raft.syncs      counter    raft journal fsyncs (one per round, all groups)
func BrokerMetrics(b *broker.Broker) error {
	m := telemetry.Meter()
	parts, err1 := m.Int64ObservableGauge("meshkafka.broker.partitions")
	open, err2 := m.Int64ObservableGauge("meshkafka.broker.open_logs")
	files, err3 := m.Int64ObservableGauge("meshkafka.broker.open_files")
	prod, err4 := m.Int64ObservableCounter("meshkafka.broker.produce.requests")
	fsyncs, err5 := m.Int64ObservableCounter("meshkafka.wal.fsyncs")
	cpf, err6 := m.Int64ObservableCounter("meshkafka.wal.checkpoint_fsyncs")
	fss, err11 := m.Int64ObservableCounter("meshkafka.wal.filesystem_syncs")
	leads, err7 := m.Int64ObservableGauge("meshkafka.replica.leaders", metric.WithDescription("replicated partitions this broker leads"))
	under, err8 := m.Int64ObservableGauge("meshkafka.replica.under_replicated",
		metric.WithDescription("led replicated partitions with fewer in-sync replicas than replicas"))
	msgs, err9 := m.Int64ObservableCounter("meshkafka.replica.raft.messages", metric.WithDescription("partition raft messages by direction"))
	syncs, err10 := m.Int64ObservableCounter("meshkafka.replica.raft.syncs", metric.WithDescription("partition raft journal fsyncs"))
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11); err != nil {
		return err
	}
	sent, recv, dropped := metric.WithAttributes(dirAttr("sent")), metric.WithAttributes(dirAttr("received")), metric.WithAttributes(dirAttr("dropped"))
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := b.Stats()
		o.ObserveInt64(parts, st.Partitions)
		o.ObserveInt64(open, st.OpenLogs)
		o.ObserveInt64(files, int64(st.OpenFiles))
		o.ObserveInt64(prod, st.ProduceRequests)
		o.ObserveInt64(fsyncs, st.Fsyncs)
		o.ObserveInt64(cpf, st.CheckpointFsyncs)
		o.ObserveInt64(fss, st.FilesystemSyncs)
		o.ObserveInt64(leads, st.ReplicaLeaders)
		o.ObserveInt64(under, st.UnderReplicated)
		o.ObserveInt64(msgs, int64(st.Raft.Sent), sent)
		o.ObserveInt64(msgs, int64(st.Raft.Received), recv)
		o.ObserveInt64(msgs, int64(st.Raft.Dropped), dropped)
		o.ObserveInt64(syncs, int64(st.Raft.Syncs))
		return nil
	}, parts, open, files, prod, fsyncs, cpf, fss, leads, under, msgs, syncs)
	return err
}

// EndpointMetrics exports a mesh endpoint's UDP socket counters,
// meshkafka.mesh.udp.packets and meshkafka.mesh.udp.bytes with direction=rx|tx, and its live
// connections by path, meshkafka.mesh.connections (gauge, path=direct|relay|unknown).
func EndpointMetrics(ep *endpoint.Endpoint) error {
	m := telemetry.Meter()
	pk, err1 := m.Int64ObservableCounter("meshkafka.mesh.udp.packets")
	by, err2 := m.Int64ObservableCounter("meshkafka.mesh.udp.bytes", metric.WithUnit("By"))
	conns, err3 := m.Int64ObservableGauge("meshkafka.mesh.connections", metric.WithDescription("live mesh connections by path"))
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	rx, tx := metric.WithAttributes(dirAttr("rx")), metric.WithAttributes(dirAttr("tx"))
	kinds := []string{endpoint.PathDirect, endpoint.PathRelay, endpoint.PathUnknown}
	byPath := map[string]metric.ObserveOption{}
	for _, k := range kinds {
		byPath[k] = metric.WithAttributes(attribute.String("path", k))
	}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := ep.SocketStats()
		o.ObserveInt64(pk, st.RxPackets, rx)
		o.ObserveInt64(pk, st.TxPackets, tx)
		o.ObserveInt64(by, st.RxBytes, rx)
		o.ObserveInt64(by, st.TxBytes, tx)
		n := map[string]int64{}
		for _, p := range ep.Paths() {
			n[p.Kind]++
		}
		for _, k := range kinds {
			o.ObserveInt64(conns, n[k], byPath[k])
		}
		return nil
	}, pk, by, conns)
	return err
}

// CommitObserver is a wal.StoreOptions.OnCommit (its OnCommit method) that records nothing
// until Start: the broker's store opens before the metrics pipeline is served, and
// instruments must be made after it is (ServeMetrics).
type CommitObserver struct {
	f atomic.Pointer[func(time.Duration, int)]
}

// OnCommit records one journal group commit once Start was called.
func (c *CommitObserver) OnCommit(fsync time.Duration, bytes int) {
	if f := c.f.Load(); f != nil {
		(*f)(fsync, bytes)
	}
}

// Start makes the instruments (WALCommitMetrics) and records from then on.
func (c *CommitObserver) Start() {
	f := WALCommitMetrics()
	c.f.Store(&f)
}

// WALCommitMetrics returns a wal.StoreOptions.OnCommit that records every journal group
// commit: meshkafka.wal.fsync.duration (histogram, seconds) and meshkafka.wal.commit.size
// (histogram, bytes made durable by one fsync).
func WALCommitMetrics() func(fsync time.Duration, bytes int) {
	m := telemetry.Meter()
	dur, _ := m.Float64Histogram("meshkafka.wal.fsync.duration", metric.WithUnit("s"),
		metric.WithDescription("journal fsync latency (one per group commit)"),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
	size, _ := m.Int64Histogram("meshkafka.wal.commit.size", metric.WithUnit("By"),
		metric.WithDescription("journal bytes made durable by one group commit"),
		metric.WithExplicitBucketBoundaries(256, 1<<10, 4<<10, 16<<10, 64<<10, 256<<10, 1<<20, 4<<20, 16<<20))
	return func(fsync time.Duration, bytes int) {
		dur.Record(context.Background(), fsync.Seconds())
		size.Record(context.Background(), int64(bytes))
	}
}

// ControlMetrics exports what the control plane did with what it heard:
// meshkafka.control.digests (result=believed|not_believed|directory_full|malformed) and
// meshkafka.gossip.frames.dropped (inbound gossip frames over a per-peer or total budget).
func ControlMetrics(n *meshctl.Node, g *gossip.Gossip) error {
	m := telemetry.Meter()
	dg, err1 := m.Int64ObservableCounter("meshkafka.control.digests")
	dropped, err2 := m.Int64ObservableCounter("meshkafka.gossip.frames.dropped")
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	res := func(r string) metric.ObserveOption { return metric.WithAttributes(attribute.String("result", r)) }
	believed, notBelieved, full, malformed := res("believed"), res("not_believed"), res("directory_full"), res("malformed")
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := n.Stats()
		o.ObserveInt64(dg, int64(st.Believed), believed)
		o.ObserveInt64(dg, int64(st.NotBelieved), notBelieved)
		o.ObserveInt64(dg, int64(st.DirectoryFull), full)
		o.ObserveInt64(dg, int64(st.Malformed), malformed)
		o.ObserveInt64(dropped, int64(g.InDropped()))
		return nil
	}, dg, dropped)
	return err
}

func dirAttr(d string) attribute.KeyValue { return attribute.String("direction", d) }

// Observe registers one observable counter per name, each read from the func at every scrape
// (the relay's traffic counters; any stats struct of monotonic counters).
func Observe(counters map[string]func() int64) error {
	m := telemetry.Meter()
	return observe(counters, func(name string) (metric.Int64Observable, error) { return m.Int64ObservableCounter(name) })
}

// ObserveGauges registers one observable gauge per name, each read from its func at every
// scrape (raft state: term, commit index, leadership).
func ObserveGauges(gauges map[string]func() int64) error {
	m := telemetry.Meter()
	return observe(gauges, func(name string) (metric.Int64Observable, error) { return m.Int64ObservableGauge(name) })
}

// observe makes one instrument per name with mk and registers one callback that reads every
// func at each scrape.
func observe(fns map[string]func() int64, mk func(name string) (metric.Int64Observable, error)) error {
	insts := make([]metric.Observable, 0, len(fns))
	byInst := map[metric.Int64Observable]func() int64{}
	for name, f := range fns {
		inst, err := mk(name)
		if err != nil {
			return err
		}
		insts = append(insts, inst)
		byInst[inst] = f
	}
	_, err := telemetry.Meter().RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for inst, f := range byInst {
			o.ObserveInt64(inst, f())
		}
		return nil
	}, insts...)
	return err
}

// StatusPageRow is the start-up banner's row for the status page served at "/" beside the
// /metrics at metricsURL (what ServeMetrics returned; "" when -metrics is off).
func StatusPageRow(metricsURL string) [2]string {
	if metricsURL == "" {
		return [2]string{"status", ""}
	}
	return [2]string{"status", strings.TrimSuffix(metricsURL, "metrics") + " (status page: brokers, topics, consumer lag, mesh paths, traces)"}
}
