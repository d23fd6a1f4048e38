package kafka_test

// Captures the request frames real clients send (kgo, kafka-go, kcat/librdkafka) into
// kafkawire/testdata, where kafkawire's golden test decodes them. Run with
// UPDATE_GOLDEN=1 to refresh the captures; otherwise this test does nothing.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	segkafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/gateway"
)

// tapProxy forwards connections to target and records the first request frame of every
// (api key, version) seen, by client name.
type tapProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frames map[string][]byte // "key-version" -> frame (without size prefix)
	wg     sync.WaitGroup
}

func newTap(t *testing.T, ln net.Listener, target string) *tapProxy {
	p := &tapProxy{ln: ln, target: target, frames: map[string][]byte{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(c, up); c.Close() }()
			go func() {
				defer p.wg.Done()
				defer up.Close()
				var size [4]byte
				for {
					if _, err := io.ReadFull(c, size[:]); err != nil {
						return
					}
					frame := make([]byte, binary.BigEndian.Uint32(size[:]))
					if _, err := io.ReadFull(c, frame); err != nil {
						return
					}
					if len(frame) >= 4 {
						k := fmt.Sprintf("key%02d-v%02d", binary.BigEndian.Uint16(frame), binary.BigEndian.Uint16(frame[2:]))
						p.mu.Lock()
						if _, ok := p.frames[k]; !ok {
							p.frames[k] = frame
						}
						p.mu.Unlock()
					}
					if _, err := up.Write(append(size[:], frame...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *tapProxy) close() { p.ln.Close() }

func TestCaptureGoldenFrames(t *testing.T) {
	if os.Getenv("UPDATE_GOLDEN") == "" {
		t.Skip("set UPDATE_GOLDEN=1 to capture client request frames into kafkawire/testdata")
	}
	dir := filepath.Join("..", "..", "kafkawire", "testdata", "requests")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := rcStart(t, t.TempDir(), "")
	s.createTopic(t, "golden", 2)
	capture := func(client string, run func(addr string)) {
		// A gateway that tells clients to dial the tap, so every connection is recorded.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv, err := gateway.NewServer(gateway.Config{Backend: s.b.Service(nil), AdvertisedHost: "127.0.0.1",
			AdvertisedPort: int32(ln.Addr().(*net.TCPAddr).Port), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		gln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(gln)
		defer srv.Close()
		tap := newTap(t, ln, gln.Addr().String())
		run(ln.Addr().String())
		time.Sleep(100 * time.Millisecond)
		tap.close()
		tap.mu.Lock()
		defer tap.mu.Unlock()
		for k, f := range tap.frames {
			if err := os.WriteFile(filepath.Join(dir, client+"-"+k+".bin"), f, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: %d distinct request kinds", client, len(tap.frames))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	capture("kgo", func(addr string) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("golden"), kgo.ConsumeTopics("golden"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for n := 0; n < 1; n += cl.PollFetches(ctx).NumRecords() {
		}
	})
	capture("kafka-go", func(addr string) {
		w := &segkafka.Writer{Addr: segkafka.TCP(addr), Topic: "golden", Compression: segkafka.Gzip, Transport: &segkafka.Transport{}, BatchTimeout: time.Millisecond}
		if err := w.WriteMessages(ctx, segkafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		w.Close()
		r := segkafka.NewReader(segkafka.ReaderConfig{Brokers: []string{addr}, Topic: "golden", Partition: 0, MaxWait: 100 * time.Millisecond})
		defer r.Close()
		r.SetOffset(0)
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		r.ReadMessage(rctx) // partition 0 may be empty; the fetch is what is captured
		rcancel()
	})
	if bin, err := exec.LookPath("kcat"); err == nil {
		capture("kcat", func(addr string) {
			cmd := exec.Command(bin, "-b", addr, "-P", "-t", "golden", "-z", "snappy", "-H", "h=x", "-K", ":")
			cmd.Stdin = strings.NewReader("k:v\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kcat -P: %v %s", err, out)
			}
			if out, err := exec.Command(bin, "-b", addr, "-C", "-t", "golden", "-e", "-o", "beginning").CombinedOutput(); err != nil {
				t.Fatalf("kcat -C: %v %s", err, out)
			}
			if out, err := exec.Command(bin, "-b", addr, "-L").CombinedOutput(); err != nil {
				t.Fatalf("kcat -L: %v %s", err, out)
			}
		})
	}
}
