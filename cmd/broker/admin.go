package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/meshkafka/meshkafka/broker/controller"
	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// defaultAdmin is where `broker quorum …` looks for the admin API unless told otherwise.
const defaultAdmin = "127.0.0.1:9644"

// checkLoopback refuses an admin address that is not a loopback IP and port: the admin API
// has no authentication.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address (the admin API has no authentication)", addr)
	}
	return nil
}

// serveAdmin serves h on addr until the returned function is called.
func serveAdmin(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	shutdown := cli.ServeHTTP(ln, h, 10*time.Second, func(err error) { log.Error("admin API stopped", "err", err) })
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown(ctx)
	}, nil
}

// quorumCommand runs `broker quorum status|allow|disallow|add|remove [-admin addr] [NodeId]`
// against a running broker's admin API and prints its answer.
func quorumCommand(ctx context.Context, args []string, getenv cli.Getenv, stdout, stderr io.Writer) error {
	usage := "usage: broker quorum status|allow|disallow|add|remove|decommission [-admin host:port] [-role broker|gateway|admin] [-wait] [<NodeId>]"
	if len(args) == 0 {
		return errors.New(usage)
	}
	if args[0] == "help" || cli.IsHelp(args) {
		fmt.Fprintf(stdout, "broker quorum: asks a running broker's admin API about the metadata quorum, or changes its membership\n\n%s\n\nexamples:\n  broker quorum status -admin 127.0.0.1:9644\n  broker quorum allow <NodeId>      # admit a new broker (then it joins by itself)\n  broker quorum allow -role gateway <NodeId>  # every broker serves this gateway\n  broker quorum decommission -wait <NodeId>  # move every replica it holds to other brokers, wait until none is left\n  broker quorum remove <NodeId>\n\ndecommission drains a broker before it is removed: each replicated partition it is a replica of\nmoves to a live broker that is not one yet (a replica reassignment: the new replica catches up,\njoins, then the old one leaves; clients keep running). It is refused when no broker can take a\nreplica (add one first). Its single-owner (replication factor 1) partitions have no copy to move:\nremove places them on other brokers, empty. -wait polls the status until the broker holds no\nreplica; then remove it.\n\n-admin defaults to %s (env MESHKAFKA_ADMIN or RAFKA_ADMIN_ADDR)\n", usage, defaultAdmin)
		return flag.ErrHelp
	}
	action := args[0]
	fs := flag.NewFlagSet("broker quorum "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := getenv("RAFKA_ADMIN_ADDR")
	if admin == "" {
		admin = defaultAdmin
	}
	fs.StringVar(&admin, "admin", admin, "the broker's admin API address (env RAFKA_ADMIN_ADDR)")
	role := fs.String("role", "", "with allow/disallow: the role to give or take (broker: admission to the quorum, the default; gateway; admin)")
	wait := fs.Bool("wait", false, "with decommission: wait until the broker holds no replica")
	if err := cli.ApplyEnv(fs, getenv); err != nil {
		return err
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	rest := fs.Args()
	var method, path string
	switch action {
	case "status":
		if len(rest) != 0 {
			return errors.New(usage)
		}
		method, path = http.MethodGet, "/quorum/status"
	case "allow", "disallow", "add", "remove", "decommission":
		if len(rest) != 1 {
			return errors.New(usage)
		}
		if _, err := controller.RoleActionFor(action, *role); err != nil {
			return err
		}
		method, path = http.MethodPost, "/quorum/"+action+"?node="+url.QueryEscape(rest[0])
		if *role != "" {
			path += "&role=" + url.QueryEscape(*role)
		}
	default:
		return errors.New(usage)
	}
	ctx0 := ctx
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+admin+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w", admin, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if _, err := stdout.Write(body); err != nil {
		return err
	}
	if action == "decommission" && *wait {
		return waitDrained(ctx0, admin, rest[0], stdout, stderr)
	}
	return nil
}

// waitDrained polls the admin API's status until the broker with NodeId node holds no
// replica (every second, until ctx ends).
func waitDrained(ctx context.Context, admin, node string, stdout, stderr io.Writer) error {
	last := -1
	for {
		st, err := adminStatus(ctx, admin)
		if err != nil {
			fmt.Fprintf(stderr, "status: %v (trying again)\n", err)
		} else {
			n := 0
			for _, b := range st.Brokers {
				if b.NodeID == node {
					n = b.Replicas
				}
			}
			if n == 0 {
				fmt.Fprintf(stdout, "drained: %s holds no replica; remove it with: broker quorum remove %s\n", node, node)
				return nil
			}
			if n != last {
				fmt.Fprintf(stderr, "%s still holds %d replica(s)\n", node, n)
				last = n
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// adminStatus is GET /quorum/status.
func adminStatus(ctx context.Context, admin string) (controller.QuorumStatus, error) {
	var st controller.QuorumStatus
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/quorum/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s", resp.Status)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st)
	return st, err
}

// MeshPath is one row of the admin API's GET /mesh/paths: how one live mesh connection of
// this broker reaches its peer right now (package mesh/endpoint's ConnPath).
type MeshPath struct {
	NodeID string  `json:"node_id"`
	ALPN   string  `json:"alpn"`
	Path   string  `json:"path"`             // direct, relay or unknown
	Remote string  `json:"remote,omitempty"` // the peer's UDP address when direct
	Relay  string  `json:"relay,omitempty"`  // the relay the packets go through when relayed
	RTTMs  float64 `json:"rtt_ms"`           // quic-go's smoothed RTT of the connection
}

// meshPaths lists every live connection's path (the replica transport's to the other brokers,
// the quorum's, the gateways'), ordered by peer then ALPN.
func meshPaths(paths []endpoint.ConnPath) []MeshPath {
	out := make([]MeshPath, 0, len(paths))
	for _, p := range paths {
		m := MeshPath{NodeID: p.Peer.String(), ALPN: p.ALPN, Path: p.Kind, RTTMs: float64(p.RTT) / float64(time.Millisecond)}
		switch p.Kind {
		case endpoint.PathDirect:
			m.Remote = p.Remote.String()
		case endpoint.PathRelay:
			m.Relay = p.RelayURL
		}
		out = append(out, m)
	}
	return out
}

// adminHandler is the controller's admin API plus GET /mesh/paths (the path of every live
// mesh connection, from ep).
func adminHandler(ctl http.Handler, ep *endpoint.Endpoint) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", ctl)
	mux.HandleFunc("GET /mesh/paths", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(meshPaths(ep.Paths()))
	})
	return mux
}
