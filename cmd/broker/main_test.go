package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// brokerRun is a broker command running in the background: done is closed when it exits,
// err is then its error.
type brokerRun struct {
	done chan struct{}
	err  error
}

// runBroker runs the broker command with args and the environment getenv in-process, in the
// background; when the test ends it is cancelled and must exit without error (checked once,
// even when the test saw it exit before).
func runBroker(t *testing.T, args []string, getenv func(string) string) *brokerRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &brokerRun{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = run(ctx, args, getenv, io.Discard, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
		if r.err != nil {
			t.Errorf("broker: %v", r.err)
		}
	})
	return r
}

// startBroker runs the broker command in-process and returns its address.
func startBroker(t *testing.T, env map[string]string, args ...string) endpoint.NodeAddr {
	t.Helper()
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "addr")
	args = append([]string{"-data", dir, "-bind", "127.0.0.1:0", "-addr-file", addrFile}, args...)
	r := runBroker(t, args, func(k string) string { return env[k] })
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil {
			a, err := endpoint.ParseNodeAddr(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		select {
		case <-r.done:
			t.Fatalf("broker exited: %v", r.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("broker wrote no address")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBrokersAnnounceThemselves: two brokers (the second bootstrapping from the first through
// -gossip-peers) announce themselves on the mesh's control topic; an observer that knows only
// the second learns both, with their addresses and partition counts; a node of another mesh id
// hears nothing.
func TestBrokersAnnounceThemselves(t *testing.T) {
	env := map[string]string{"RAFKA_GOSSIP_INTERVAL_MS": "100", "RAFKA_MESH_ID": "cmd-test"}
	a := startBroker(t, env, "-partitions", "3")
	b := startBroker(t, env, "-gossip-peers", a.String())

	observe := func(meshID string) (*sync.Map, func()) {
		ep, err := endpoint.New(endpoint.Options{BindAddr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		g, err := gossip.Attach(ep, gossip.Config{CloseGrace: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		var seen sync.Map
		n, err := meshctl.Join(t.Context(), ep, g, meshctl.Config{Role: meshctl.RoleGateway, MeshID: meshID, Interval: 100 * time.Millisecond,
			Bootstrap: []endpoint.NodeAddr{b}, OnChange: func(c meshctl.Change) { seen.Store(c.Digest.Node, c.Digest) }})
		if err != nil {
			t.Fatal(err)
		}
		return &seen, func() { n.Close(); g.Close(); ep.Close() }
	}
	seen, stop := observe("cmd-test")
	defer stop()
	other, stopOther := observe("another-mesh")
	defer stopOther()

	deadline := time.Now().Add(15 * time.Second)
	for {
		_, okA := seen.Load(a.ID)
		_, okB := seen.Load(b.ID)
		if okA && okB {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("observer learned a=%v b=%v", okA, okB)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []endpoint.NodeAddr{a, b} {
		v, _ := seen.Load(want.ID)
		d := v.(meshctl.Digest)
		if d.Role != meshctl.RoleBroker || d.MeshID != "cmd-test" || len(d.Addrs) == 0 || d.Addrs[0] != want.Direct[0] {
			t.Fatalf("digest of %s: %+v (printed address %v)", want.ID.ShortString(), d, want.Direct)
		}
	}
	other.Range(func(k, v any) bool {
		t.Errorf("node of another mesh learned %+v", v)
		return true
	})
}
