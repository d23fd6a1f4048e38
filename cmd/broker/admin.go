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
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin API stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// quorumCommand runs `broker quorum status|allow|disallow|add|remove [-admin addr] [NodeId]`
// against a running broker's admin API and prints its answer.
func quorumCommand(ctx context.Context, args []string, getenv cli.Getenv, stdout, stderr io.Writer) error {
	usage := "usage: broker quorum status|allow|disallow|add|remove [-admin host:port] [-role broker|gateway|admin] [<NodeId>]"
	if len(args) == 0 {
		return errors.New(usage)
	}
	if args[0] == "help" || cli.IsHelp(args) {
		fmt.Fprintf(stdout, "broker quorum: asks a running broker's admin API about the metadata quorum, or changes its membership\n\n%s\n\nexamples:\n  broker quorum status -admin 127.0.0.1:9644\n  broker quorum allow <NodeId>      # admit a new broker (then it joins by itself)\n  broker quorum allow -role gateway <NodeId>  # every broker serves this gateway\n  broker quorum remove <NodeId>\n\n-admin defaults to %s (env MESHKAFKA_ADMIN or RAFKA_ADMIN_ADDR)\n", usage, defaultAdmin)
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
	case "allow", "disallow", "add", "remove":
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
	_, err = stdout.Write(body)
	return err
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
