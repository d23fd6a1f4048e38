package relayserver

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/meshkafka/meshkafka/mesh/relay"
)

func pingSeq(f relay.Frame) uint64 { return binary.BigEndian.Uint64(f.PingData[:]) }

// TestWindowPongs: only a Pong to a Ping that was sent, newer than the last confirmed one,
// moves the window.
func TestWindowPongs(t *testing.T) {
	var w window
	var pings []relay.Frame
	for range pingEvery {
		if p, due := w.wrote(); due {
			pings = append(pings, p)
		}
	}
	if len(pings) != 1 || pings[0].Type != relay.FramePing || pingSeq(pings[0]) != w.sent {
		t.Fatalf("after %d frames: pings %+v, sent %d", pingEvery, pings, w.sent)
	}
	var ahead [8]byte
	binary.BigEndian.PutUint64(ahead[:], w.sent+1)
	if w.pong(ahead) {
		t.Fatal("a Pong for a Ping never sent confirmed frames")
	}
	if !w.pong(pings[0].PingData) || w.unconfirmed() != 0 {
		t.Fatalf("Pong to the Ping: unconfirmed %d", w.unconfirmed())
	}
	if w.pong(pings[0].PingData) {
		t.Fatal("a repeated Pong confirmed frames again")
	}
	var zero [8]byte
	if w.pong(zero) {
		t.Fatal("a Pong older than the last confirmed one confirmed frames")
	}
}

// TestWindowInvariants drives the writer's side as writeLoop does, with Pongs for random
// earlier Pings arriving at random times: the unconfirmed frames never exceed Window, Pings
// come at least every pingEvery+1 frames, and whenever the window is full an unanswered Ping
// is in flight (so a client that answers always reopens it).
func TestWindowInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for run := range 200 {
		var w window
		var inFlight []relay.Frame // Pings sent and not yet answered, oldest first
		lastPing := uint64(0)
		for range 2000 {
			if w.full() || r.IntN(4) == 0 {
				if w.full() && len(inFlight) == 0 {
					t.Fatalf("run %d: window full (sent %d, acked %d) with no Ping to answer", run, w.sent, w.acked.Load())
				}
				if len(inFlight) > 0 {
					// The client answers in order; Pongs may be lost or arrive late.
					i := r.IntN(len(inFlight))
					w.pong(inFlight[i].PingData)
					inFlight = inFlight[i+1:]
				}
				continue
			}
			p, due := w.wrote()
			if due {
				inFlight = append(inFlight, p)
				lastPing = pingSeq(p)
			}
			if w.unconfirmed() > Window {
				t.Fatalf("run %d: %d unconfirmed frames", run, w.unconfirmed())
			}
			if w.sent-lastPing > pingEvery {
				t.Fatalf("run %d: %d frames since the last Ping", run, w.sent-lastPing)
			}
		}
	}
}
