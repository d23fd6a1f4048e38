package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// The socket counters written beside a CPU profile are the profiled endpoint's change over
// the interval: a dial between two loopback endpoints shows as datagrams each way.
func TestWriteSocketDelta(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.sock.json")
	t.Cleanup(func() { ProfileEndpoint(nil) })
	ProfileEndpoint(nil)
	if err := writeSocketDelta(path, endpoint.SocketStats{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("counters written without an endpoint: %v", err)
	}

	a, err := endpoint.New(endpoint.Options{BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := endpoint.New(endpoint.Options{BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ProfileEndpoint(a)
	start := socketStats()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := a.Dial(ctx, b.Addr(), "/cli-test/0"); err == nil { // b serves no ALPN: refused, but after datagrams both ways
		c.Close()
	}
	if err := writeSocketDelta(path, start); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]int64
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if m["tx_packets"] < 1 || m["rx_packets"] < 1 || m["tx_bytes"] < 1200 || m["tx_writes"] < 1 {
		t.Fatalf("counters %v: want the dial's datagrams each way", m)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
}
