package relayserver

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/meshkafka/meshkafka/mesh/relay"
)

// Window is the most frames the server sends a client beyond the last Ping the client has
// answered.
//
// Why: iroh 0.28.1's relay client passes every frame it receives (Pings included; only Pongs
// are taken out before) through a 64-slot channel to its per-relay actor, and that actor makes
// a round trip to the client actor before it takes each frame. When the client actor, holding
// a 65th frame, blocks on the full channel while the per-relay actor waits for its answer,
// both wait for each other for good: the node's relay path is dead until the process restarts
// (QUIC over it times out). Frames arriving faster than a busy node's actors take them get
// there; one frame per QUIC packet from a fast sender on a loaded machine is enough. The
// client answers a Ping only once its per-relay actor has taken the Ping, and so every frame
// before it, out of that channel; with at most Window frames sent after the last answered
// Ping, the channel never holds more than Window < 64 frames. 48 leaves a margin below 64.
//
// Only clients that may need it are paced: one whose HTTP upgrade carries relay.UnpacedHeader
// (our relay.Client, which takes every frame as it arrives and answers Pings from its read
// loop) is not, as the Pong round trip every pingEvery frames costs small frames about half
// their throughput (BenchmarkRelayThroughput). A window larger than 63 frames would not keep
// iroh's client alive, so a larger window was not the way to win it back.
const Window = 48

// pingEvery is the number of frames after which the writer adds a Ping, so that Pongs keep
// coming back before the window closes (up to Window/pingEvery Pings are in flight). It must be
// below Window - 1: then, whenever the window is full, a Ping the client has not answered yet
// is among the unconfirmed frames, and its Pong opens the window again.
const pingEvery = Window / 4

// window counts the frames sent to one client and the frames it has confirmed. Sequence
// numbers count every frame written, Pings included, from 1; a Ping carries its own sequence
// number as its 8 bytes (big-endian), and the client's Pong echoes them.
type window struct {
	// Set at construction: the client opted out of the window (relay.UnpacedHeader). Then
	// full is always false and no Pings are added.
	unpaced bool

	// Owned by the writer goroutine.
	sent uint64 // sequence number of the last frame written

	// Written by the writer, read by the read loop.
	pinged atomic.Uint64 // sequence number of the last Ping written
	// Written by the read loop, read by the writer.
	acked atomic.Uint64 // highest sequence number the client confirmed
}

// full reports whether the next frame may not be written now: it, and the Ping that falls
// due after it, must fit into the window.
func (w *window) full() bool {
	if w.unpaced {
		return false
	}
	need := uint64(1)
	if w.sent+1-w.pinged.Load() >= pingEvery {
		need = 2
	}
	return w.sent-w.acked.Load()+need > Window
}

// unconfirmed is the number of frames written and not yet confirmed.
func (w *window) unconfirmed() uint64 { return w.sent - w.acked.Load() }

// wrote records one frame written and, when a Ping is due, returns it (it is then counted as
// written too, so the caller must write it).
func (w *window) wrote() (relay.Frame, bool) {
	w.sent++
	if w.unpaced {
		return relay.Frame{}, false
	}
	if w.sent-w.pinged.Load() < pingEvery {
		return relay.Frame{}, false
	}
	w.sent++
	w.pinged.Store(w.sent)
	f := relay.Frame{Type: relay.FramePing}
	binary.BigEndian.PutUint64(f.PingData[:], w.sent)
	return f, true
}

// pong records a Pong from the client. It reports whether it confirmed more frames: only an
// answer to a Ping that was sent and is newer than the last confirmed one does.
func (w *window) pong(data [8]byte) bool {
	seq := binary.BigEndian.Uint64(data[:])
	if seq > w.pinged.Load() {
		return false
	}
	for {
		acked := w.acked.Load()
		if seq <= acked {
			return false
		}
		if w.acked.CompareAndSwap(acked, seq) {
			return true
		}
	}
}
