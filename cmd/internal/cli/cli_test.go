package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/mesh/meshctl"
)

func envOf(m map[string]string) Getenv { return func(k string) string { return m[k] } }

// TestMeshControl (was meshctl's TestEnvConfig): the control-plane settings from the
// environment.
func TestMeshControl(t *testing.T) {
	env := map[string]string{EnvMeshID: "prod", EnvInterval: "500", EnvStaleness: "9000"}
	c, err := MeshControl(envOf(env), meshctl.Config{Role: meshctl.RoleBroker})
	if err != nil || c.MeshID != "prod" || c.Interval != 500*time.Millisecond || c.Staleness != 9*time.Second || c.Role != meshctl.RoleBroker {
		t.Fatalf("%+v %v", c, err)
	}
	env[EnvInterval] = "soon"
	if _, err := MeshControl(envOf(env), meshctl.Config{}); err == nil {
		t.Fatal("bad interval accepted")
	}
	env[EnvInterval] = "0"
	if _, err := MeshControl(envOf(env), meshctl.Config{}); err == nil {
		t.Fatal("zero interval accepted")
	}
	c, err = MeshControl(envOf(nil), meshctl.Config{})
	if err != nil || c.MeshID != "" || c.Interval != 0 {
		t.Fatalf("empty env: %+v %v", c, err)
	}
}

func TestReachFlagsAndEnv(t *testing.T) {
	parse := func(args []string, env map[string]string) (Reach, error) {
		var r Reach
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		r.Register(fs, envOf(env), "mdns")
		if err := fs.Parse(args); err != nil {
			return r, err
		}
		return r, r.Check()
	}
	env := map[string]string{EnvRelay: "https://relay.example:443", EnvSTUN: " a:1 ,, [::1]:2", EnvMDNS: "1"}
	r, err := parse(nil, env)
	if err != nil || r.Relay != "https://relay.example:443" || !r.MDNS || strings.Join(r.STUN, " ") != "a:1 [::1]:2" {
		t.Fatalf("from env: %+v %v", r.Reach, err)
	}
	r, err = parse([]string{"-relay", "", "-mdns=false", "-stun", "b:3"}, env)
	if err != nil || r.Relay != "" || r.MDNS || strings.Join(r.STUN, " ") != "b:3" {
		t.Fatalf("flags over env: %+v %v", r.Reach, err)
	}
	for _, bad := range [][]string{{"-relay", "ftp://x"}, {"-relay", "http://"}, {"-stun", "nohost"}, {"-stun", "h:"}} {
		if _, err := parse(bad, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStringVarAndMeshID(t *testing.T) {
	var data, meshID string
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	StringVar(fs, &data, "data", envOf(map[string]string{"D": "/env"}), "D", "./def", "data directory")
	MeshIDVar(fs, &meshID, envOf(nil))
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if data != "/env" || meshID != meshctl.DefaultMeshID {
		t.Fatalf("data %q meshID %q", data, meshID)
	}
	if u := fs.Lookup("data").Usage; u != "data directory (env D)" {
		t.Fatalf("usage %q", u)
	}
	if err := fs.Parse([]string{"-data", "/flag", "-mesh-id", "m"}); err != nil || data != "/flag" || meshID != "m" {
		t.Fatalf("flag: %q %q %v", data, meshID, err)
	}
	StringVar(fs, &data, "other", envOf(nil), "D", "./def", "u")
	if data != "./def" {
		t.Fatalf("unset env: %q", data)
	}
}

func TestDisableGROAndTelemetry(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "1": true, "true": true, "no": false} {
		if got := DisableGRO(envOf(map[string]string{EnvDisableGRO: v})); got != want {
			t.Errorf("MESH_DISABLE_GRO=%q: %v", v, got)
		}
	}
	c := Telemetry(envOf(nil), "svc")
	if c.Export || c.ServiceName != "svc" {
		t.Fatalf("empty env: %+v", c)
	}
	c = Telemetry(envOf(map[string]string{"OTEL_TRACES_EXPORTER": "otlp", EnvServiceName: "named"}), "svc")
	if !c.Export || c.ServiceName != "named" {
		t.Fatalf("otlp env: %+v", c)
	}
	shutdown, err := SetupTelemetry(context.Background(), envOf(nil), "svc", nil)
	if err != nil || shutdown(context.Background()) != nil {
		t.Fatalf("setup without export: %v", err)
	}
}

func TestLoggerIdentityAddrFile(t *testing.T) {
	var buf bytes.Buffer
	Logger(&buf, slog.LevelInfo, false).Debug("hidden")
	Logger(&buf, slog.LevelWarn, false).Info("hidden")
	if buf.Len() != 0 {
		t.Fatalf("logged below level: %q", buf.String())
	}
	Logger(&buf, slog.LevelWarn, true).Debug("shown")
	if !strings.Contains(buf.String(), "shown") {
		t.Fatalf("-v did not log debug: %q", buf.String())
	}
	dir := filepath.Join(t.TempDir(), "a", "b")
	k1, err := Identity(dir, "identity.key")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := Identity(dir, "identity.key")
	if err != nil || k1.Public() != k2.Public() {
		t.Fatalf("identity not kept: %v", err)
	}
	p := filepath.Join(dir, "addr")
	if err := WriteAddrFile(p, "x@1.2.3.4:5"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "x@1.2.3.4:5\n" {
		t.Fatalf("addr file %q %v", b, err)
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temp file left: %v", err)
	}
}

func TestFailStop(t *testing.T) {
	onStop, stopped := FailStop()
	select {
	case err := <-stopped:
		t.Fatalf("stopped before any call: %v", err)
	default:
	}
	first, second := errors.New("first"), errors.New("second")
	onStop(first)
	onStop(second) // must not block
	if err := <-stopped; err != first {
		t.Fatalf("stopped = %v, want the first error", err)
	}
	select {
	case err := <-stopped:
		t.Fatalf("second report delivered: %v", err)
	default:
	}
}

func TestParseRefusesPositionalArguments(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var n int
	PartitionsVar(fs, &n)
	if err := Parse(fs, []string{"-partitions", "3"}); err != nil || n != 3 {
		t.Fatalf("Parse(-partitions 3) = %v, n = %d", err, n)
	}
	if err := Parse(fs, []string{"-partitions", "3", "extra"}); err == nil {
		t.Fatal("a positional argument was accepted")
	}
	if err := Parse(fs, []string{"-nosuchflag"}); err == nil {
		t.Fatal("an unknown flag was accepted")
	}
	for _, bad := range []int{0, -1, 1<<20 + 1} {
		if CheckPartitions(bad) == nil {
			t.Errorf("-partitions %d accepted", bad)
		}
	}
	for _, good := range []int{1, 1 << 20} {
		if err := CheckPartitions(good); err != nil {
			t.Errorf("-partitions %d refused: %v", good, err)
		}
	}
}
