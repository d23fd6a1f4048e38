package main

import (
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/mesh/discovery/mdns"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func TestReachFlags(t *testing.T) {
	env := map[string]string{"RAFKA_RELAY_URL": "http://127.0.0.1:3340", "RAFKA_MDNS": "1", "RAFKA_STUN_SERVERS": "127.0.0.1:3478, [::1]:3478"}
	o, err := parse(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.relay != "http://127.0.0.1:3340" || !o.mdns || !slices.Equal(o.stun, []string{"127.0.0.1:3478", "[::1]:3478"}) {
		t.Fatalf("from env: %+v", o)
	}
	o, err = parse([]string{"-mdns=false", "-relay", ""}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || o.mdns || o.relay != "" {
		t.Fatalf("flags over env: %+v %v", o, err)
	}
	o, err = parse(nil, func(string) string { return "" }, io.Discard)
	if err != nil || o.mdns || o.relay != "" || len(o.stun) != 0 {
		t.Fatalf("defaults must contact nothing: %+v %v", o, err)
	}
	for _, bad := range [][]string{{"-relay", "ftp://x"}, {"-relay", "relay.example"}, {"-stun", "nohostport"}} {
		if _, err := parse(bad, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// hub is an in-memory multicast link for injected mDNS sockets (nothing leaves the process).
type hub struct {
	mu      sync.Mutex
	members []*memConn
}

type memConn struct {
	h      *hub
	in     chan []byte
	closed chan struct{}
	once   sync.Once
}

var memAddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}

func (h *hub) conns() []mdns.Conn {
	c := &memConn{h: h, in: make(chan []byte, 256), closed: make(chan struct{})}
	h.mu.Lock()
	h.members = append(h.members, c)
	h.mu.Unlock()
	return []mdns.Conn{{PacketConn: c, Group: net.UDPAddrFromAddrPort(mdns.GroupV4)}}
}

func (c *memConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.in:
		return copy(b, p), memAddr, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *memConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	for _, m := range c.h.members {
		select {
		case m.in <- append([]byte(nil), b...):
		default:
		}
	}
	return len(b), nil
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
func (c *memConn) LocalAddr() net.Addr              { return memAddr }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// TestBrokerPublishesOnMDNS: a broker started with -mdns announces its node id and the address
// it serves on; a listener on the same (in-memory) link finds it by id.
func TestBrokerPublishesOnMDNS(t *testing.T) {
	var h hub
	mdnsConns = h.conns
	t.Cleanup(func() { mdnsConns = nil })
	listener, err := mdns.New(mdns.Config{Self: key.GenerateSecretKey().Public(), Conns: h.conns(), Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	b := startBroker(t, map[string]string{"RAFKA_GOSSIP_INTERVAL_MS": "100"}, "-mdns")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := listener.Lookup(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Direct, b.Direct) {
		t.Fatalf("mDNS has %v, broker serves on %v", got.Direct, b.Direct)
	}
	if strings.Contains(got.RelayURL, "://") {
		t.Fatalf("mDNS carried a relay URL %q (iroh's layout has none)", got.RelayURL)
	}
}
