package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/mesh/discovery/mdns"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func TestReachFlags(t *testing.T) {
	env := map[string]string{"RAFKA_RELAY_URL": "http://127.0.0.1:3340", "RAFKA_MDNS": "1", "RAFKA_STUN_SERVERS": "127.0.0.1:3478, [::1]:3478"}
	o, err := parse(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Relay != "http://127.0.0.1:3340" || !o.MDNS || !slices.Equal(o.STUN, []string{"127.0.0.1:3478", "[::1]:3478"}) {
		t.Fatalf("from env: %+v", o)
	}
	o, err = parse([]string{"-mdns=false", "-relay", ""}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || o.MDNS || o.Relay != "" {
		t.Fatalf("flags over env: %+v %v", o, err)
	}
	o, err = parse(nil, func(string) string { return "" }, io.Discard)
	if err != nil || o.MDNS || o.Relay != "" || len(o.STUN) != 0 {
		t.Fatalf("defaults must contact nothing: %+v %v", o, err)
	}
	for _, bad := range [][]string{{"-relay", "ftp://x"}, {"-relay", "relay.example"}, {"-stun", "nohostport"}} {
		if _, err := parse(bad, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestBrokerPublishesOnMDNS: a broker started with -mdns announces its node id and the address
// it serves on; a listener on the same (in-memory) link finds it by id.
func TestBrokerPublishesOnMDNS(t *testing.T) {
	var h meshtest.Link
	mdnsConns = h.MDNSConns
	t.Cleanup(func() { mdnsConns = nil })
	listener, err := mdns.New(mdns.Config{Self: key.GenerateSecretKey().Public(), Conns: h.MDNSConns(), Interval: 100 * time.Millisecond})
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
