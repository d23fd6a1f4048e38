package cluster

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// SocketCountersAfter returns the counters of the newest profile of that process only once
// one newer than the given number exists, and NewestSocketCounters names it.
func TestSocketCountersAfter(t *testing.T) {
	dir := t.TempDir()
	if n := NewestSocketCounters(dir, 42); n != -1 {
		t.Fatalf("newest in an empty dir: %d, want -1", n)
	}
	write := func(name, body string) { // as the child does: renamed into place
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Error(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	write("broker-42-2.sock.json", `{"tx_packets":7}`+"\n")
	write("broker-43-10.sock.json", `{"tx_packets":99}`+"\n") // another process
	if n := NewestSocketCounters(dir, 42); n != 2 {
		t.Fatalf("newest: %d, want 2", n)
	}
	if _, err := SocketCountersAfter(dir, 42, 2, 50*time.Millisecond); err == nil {
		t.Fatal("counters returned with none newer than profile 2")
	}
	go func() {
		time.Sleep(30 * time.Millisecond)
		write("broker-42-10.sock.json", `{"tx_packets":11,"rx_small":3}`+"\n")
	}()
	m, err := SocketCountersAfter(dir, 42, 2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m["tx_packets"] != 11 || m["rx_small"] != 3 {
		t.Fatalf("counters %v, want those of profile 10", m)
	}
}
