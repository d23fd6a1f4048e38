package endpoint

import "testing"

// A plain endpoint reports its connections as direct at the peer's real address, with an
// RTT once data has crossed.
func TestPathOfPlain(t *testing.T) {
	a, b := newEP(t), newEP(t)
	b.Handle(echoALPN, echo)
	c, err := a.Dial(ctxT(t), b.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, []byte("x"))
	p := a.PathOf(c)
	if p.Kind != PathDirect || p.Remote != b.LocalAddr() || p.Peer != b.NodeID() || p.ALPN != echoALPN || p.RTT <= 0 {
		t.Fatalf("path %+v, want direct to %v with an RTT", p, b.LocalAddr())
	}
	ps := a.Paths()
	if len(ps) != 1 || ps[0].Peer != b.NodeID() || ps[0].Kind != PathDirect || ps[0].Remote != b.LocalAddr() {
		t.Fatalf("Paths() = %+v", ps)
	}
}

// Over a magicsock with direct paths disabled, the path is the relay, with no remote
// address (never the magicsock's mapped placeholder).
func TestPathOfRelay(t *testing.T) {
	_, url, a, b := relayOnlyPair(t)
	c, err := a.Dial(ctxT(t), NodeAddr{ID: b.NodeID(), RelayURL: url}, echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, []byte("x"))
	p := a.PathOf(c)
	if p.Kind != PathRelay || p.RelayURL != url || p.Remote.IsValid() || p.RTT <= 0 {
		t.Fatalf("path %+v, want relay %s", p, url)
	}
}
