package magicsock_test

import (
	"context"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/mesh/meshtls"
)

// BenchmarkRelayQUICThroughput: one QUIC stream between two Go nodes on magicsocks over
// loopback, through our relay server (path=relay, direct paths disabled) and on the direct
// path (path=direct), in the same run. Reports payload MB/s.
func BenchmarkRelayQUICThroughput(b *testing.B) {
	for _, path := range []string{"relay", "direct"} {
		b.Run("path="+path+"/impl=ours", func(b *testing.B) {
			benchPath(b, path == "relay")
		})
	}
}

func benchPath(b *testing.B, relayOnly bool) {
	_, url := meshtest.StartRelay(b)
	a, c := newPeer(b, url, relayOnly), newPeer(b, url, relayOnly)
	cert, err := meshtls.GenerateCertificate(c.sk)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := c.tr.Listen(meshtls.ServerConfig(cert, func() []string { return []string{alpn} }), quicConf)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { _ = ln.Close(); wg.Wait() }()
	wg.Go(func() {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		s, err := conn.AcceptStream(context.Background())
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, s)
		_, _ = s.Write([]byte{1})
		_ = s.Close()
		<-conn.Context().Done()
	})
	var direct []netip.AddrPort
	if !relayOnly {
		direct = c.ms.DirectAddrs()
	}
	addr := a.ms.AddNodeAddr(c.sk.Public(), url, direct)
	acert, _ := meshtls.GenerateCertificate(a.sk)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := a.tr.Dial(ctx, addr, meshtls.ClientConfig(acert, c.sk.Public(), alpn), quicConf)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	if !relayOnly {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if pi, _ := a.ms.Path(c.sk.Public()); pi.Direct.IsValid() {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("no direct path")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	start := time.Now()
	n := 0
	for b.Loop() {
		if _, err := s.Write(chunk); err != nil {
			b.Fatal(err)
		}
		n++
	}
	_ = s.Close()
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(n*len(chunk))/elapsed.Seconds()/1e6, "MB/s")
}
