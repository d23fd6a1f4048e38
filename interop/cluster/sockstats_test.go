package cluster

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A mark's Counters are each process's newest counters, and only once they are newer than
// what the process had written when the mark was taken.
func TestSocketMark(t *testing.T) {
	dir := t.TempDir()
	if m := MarkSockets(dir, 42); m.newest[0] != -1 {
		t.Fatalf("newest in an empty dir: %d, want -1", m.newest[0])
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
	mark := MarkSockets(dir, 42, 43)
	if mark.newest[0] != 2 || mark.newest[1] != 10 {
		t.Fatalf("newest: %v, want [2 10]", mark.newest)
	}
	if _, err := mark.Counters(50 * time.Millisecond); err == nil {
		t.Fatal("counters returned with none newer than the mark")
	}
	go func() {
		time.Sleep(30 * time.Millisecond)
		write("broker-42-10.sock.json", `{"tx_packets":11,"rx_small":3}`+"\n")
		write("broker-43-12.sock.json", `{"tx_packets":5}`+"\n")
	}()
	got, err := mark.Counters(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got[0]["tx_packets"] != 11 || got[0]["rx_small"] != 3 || got[1]["tx_packets"] != 5 {
		t.Fatalf("counters %v, want those of profiles 10 and 12", got)
	}
}
