package gateway_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/internal/scramkey"
	"github.com/meshkafka/meshkafka/kafkawire"
	"github.com/meshkafka/meshkafka/wal"
)

// lookupCounter counts credential lookups per user: each is one password check.
type lookupCounter struct {
	secBackend
	mu sync.Mutex
	n  map[string]int
}

func (c *lookupCounter) DescribeUserScramCredentials(ctx context.Context, req *brokerop.DescribeUserScramCredentialsReq) (*brokerop.DescribeUserScramCredentialsResp, error) {
	c.mu.Lock()
	for _, u := range req.Users {
		c.n[u]++
	}
	c.mu.Unlock()
	return c.secBackend.DescribeUserScramCredentials(ctx, req)
}

func (c *lookupCounter) lookups(user string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[user]
}

// addrConn is an in-memory connection that reports a peer address of our choosing.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// pipeServer serves in-memory SASL_PLAINTEXT connections "from" any address.
type pipeServer struct {
	srv  *gateway.Server
	be   *lookupCounter
	port atomic.Int32
}

func newPipeServer(tb testing.TB, sasl gateway.SASLConfig, users ...string) *pipeServer {
	tb.Helper()
	creds, err := broker.OpenCredentials(&broker.FileCredentialStore{FS: wal.OSFS(), Path: filepath.Join(tb.TempDir(), "scram")})
	if err != nil {
		tb.Fatal(err)
	}
	var req brokerop.AlterUserScramCredentialsReq
	for _, u := range users {
		for _, m := range scramkey.Mechanisms {
			salt := make([]byte, 16)
			rand.Read(salt)
			salted, err := scramkey.Salted(m, u+"-secret", salt, 4096)
			if err != nil {
				tb.Fatal(err)
			}
			req.Upsertions = append(req.Upsertions, brokerop.ScramUpsertion{Name: u, Mechanism: int8(m), Iterations: 4096, Salt: salt, SaltedPassword: salted})
		}
	}
	if _, err := creds.AlterUserScramCredentials(context.Background(), &req); err != nil {
		tb.Fatal(err)
	}
	be := &lookupCounter{secBackend: secBackend{gatewaytest.NewMem(1), creds}, n: map[string]int{}}
	srv, err := gateway.NewServer(gateway.Config{Backend: be, AdvertisedHost: "gateway", AdvertisedPort: 9093,
		Logger: slog.New(slog.DiscardHandler), SASL: sasl})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	return &pipeServer{srv: srv, be: be}
}

// dialFrom returns the client end of a new connection from ip.
func (p *pipeServer) dialFrom(ip string) net.Conn {
	cli, srv := net.Pipe()
	port := 1024 + int(p.port.Add(1))%60000
	gateway.ServeConnAs(p.srv, addrConn{srv, &net.TCPAddr{IP: net.ParseIP(ip), Port: port}}, gateway.SASLPlaintext)
	return cli
}

// kgoFrom is a kgo client whose every connection comes from ip, authenticating as user with
// SCRAM-SHA-512.
func (p *pipeServer) kgoFrom(tb testing.TB, ip, user string, opts ...kgo.Opt) *kgo.Client {
	return kafkaclients.KgoClient(tb, "gateway:9093", append(opts,
		kgo.Dialer(func(context.Context, string, string) (net.Conn, error) { return p.dialFrom(ip), nil }),
		kgo.SASL(scram.Auth{User: user, Pass: user + "-secret"}.AsSha512Mechanism()))...)
}

// plainAttempt makes one PLAIN login on a new connection from ip and returns the answer's
// error code and message; it fails the test unless the server then closes the connection.
func (p *pipeServer) plainAttempt(tb testing.TB, ip, user, pass string) (int16, string) {
	c := p.dialFrom(ip)
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second)) // a safety net only: the answer is immediate
	r := &rawConn{t: tb, c: c, fr: kafkawire.NewFrameReader(c, 0)}
	if resp := handshake(r, 1, "PLAIN", 1); resp.ErrorCode != 0 {
		tb.Errorf("handshake: %+v", resp)
		return resp.ErrorCode, ""
	}
	resp := authenticate(r, 2, "\x00"+user+"\x00"+pass, 2)
	msg := ""
	if resp.ErrorMessage != nil {
		msg = *resp.ErrorMessage
	}
	if resp.ErrorCode != 0 {
		r.expectClosed() // one attempt per connection
	}
	return resp.ErrorCode, msg
}

// 10,000 failed logins from one address, eight connections at a time, while a legitimate
// SCRAM producer on another address produces: the attacker's source is locked out after
// Burst failures (a frozen injected clock: nothing refills), so at most Burst + 8 passwords
// are ever checked (the exchanges already started when the lockout began), every attempt
// gets SASL_AUTHENTICATION_FAILED and a closed connection, and the producer completes every
// produce. After Refill one more check is allowed, and only one.
func TestBruteForceThrottled(t *testing.T) {
	const attempts, parallel, burst = 10_000, 8, 20
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	p := newPipeServer(t, gateway.SASLConfig{Clock: clk, BruteForce: gateway.BruteForceConfig{Burst: burst, Refill: 3 * time.Second}},
		"alice", "bob")

	prod := p.kgoFrom(t, "10.0.0.7", "bob", kgo.AllowAutoTopicCreation(), kgo.RecordRetries(1), kgo.RequestRetries(1))
	var legit error
	var produced atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			if legit = prod.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); legit != nil {
				return
			}
			produced.Add(1)
		}
	}()

	var wg sync.WaitGroup
	var next, lockedOut atomic.Int64
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= attempts {
				code, msg := p.plainAttempt(t, "192.0.2.66", "alice", "guess")
				if code != kerr.SaslAuthenticationFailed.Code {
					t.Errorf("attempt answered %d %q", code, msg)
					return
				}
				if strings.Contains(msg, "too many failed authentications") {
					lockedOut.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	<-done
	if legit != nil || produced.Load() != 200 {
		t.Fatalf("legitimate producer: %d of 200 produced, %v", produced.Load(), legit)
	}
	checks := p.be.lookups("alice")
	t.Logf("%d attempts: %d passwords checked, %d refused as locked out; %d produces done", attempts, checks, lockedOut.Load(), produced.Load())
	if checks < burst || checks > burst+parallel {
		t.Fatalf("%d passwords of alice checked, want %d to %d", checks, burst, burst+parallel)
	}
	if lockedOut.Load() != int64(attempts-checks) {
		t.Fatalf("%d attempts refused as locked out, want %d", lockedOut.Load(), attempts-checks)
	}
	if lockouts, refused := gateway.AuthThrottleStats(p.srv); lockouts != 1 || refused != attempts-checks {
		t.Fatalf("throttle: %d lockouts, %d refused", lockouts, refused)
	}
	// Locked out means the right password is refused too, from that address only.
	if code, msg := p.plainAttempt(t, "192.0.2.66", "bob", "bob-secret"); code == 0 || !strings.Contains(msg, "too many") {
		t.Fatalf("right password from the locked-out address: %d %q", code, msg)
	}
	if code, _ := p.plainAttempt(t, "192.0.2.67", "bob", "bob-secret"); code != 0 {
		t.Fatalf("right password from another address: %d", code)
	}
	// One failure is forgiven per Refill: one more check, then locked out again. The debt
	// of the failures past the burst (the in-flight ones) is paid off first.
	clk.Advance(time.Duration(checks-burst+1) * 3 * time.Second)
	if _, msg := p.plainAttempt(t, "192.0.2.66", "alice", "guess"); strings.Contains(msg, "too many") {
		t.Fatalf("after the refill: %q", msg)
	}
	if _, msg := p.plainAttempt(t, "192.0.2.66", "alice", "guess"); !strings.Contains(msg, "too many") {
		t.Fatalf("second attempt after one refill: %q", msg)
	}
	if got := p.be.lookups("alice"); got != checks+1 {
		t.Fatalf("%d checks after the refill, want %d", got, checks+1)
	}
}

// The throttle keys IPv6 sources by /64 and IPv4 by address, and a failure answer waits
// FailedAuthDelay on the injected clock.
func TestBruteForceSourcesAndDelay(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	p := newPipeServer(t, gateway.SASLConfig{Clock: clk, FailedAuthDelay: 100 * time.Millisecond,
		BruteForce: gateway.BruteForceConfig{Burst: 2, Refill: time.Minute}}, "alice")
	attempt := func(ip string) chan string {
		ch := make(chan string, 1)
		go func() { _, msg := p.plainAttempt(t, ip, "alice", "guess"); ch <- msg }()
		return ch
	}
	failAfterDelay := func(ip string) string {
		ch := attempt(ip)
		for clk.Waiting() == 0 { // the answer waits on the clock
			select {
			case msg := <-ch:
				t.Fatalf("answered %q before the delay", msg)
			default:
				time.Sleep(time.Millisecond)
			}
		}
		clk.Advance(100 * time.Millisecond)
		return <-ch
	}
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"} {
		if msg := failAfterDelay(ip); strings.Contains(msg, "too many") {
			t.Fatalf("%s: %q", ip, msg)
		}
	}
	if msg := failAfterDelay("2001:db8:1:2::77"); !strings.Contains(msg, "too many") {
		t.Fatalf("third failure of one /64 not locked out: %q", msg)
	}
	if msg := failAfterDelay("2001:db8:1:3::1"); strings.Contains(msg, "too many") {
		t.Fatalf("another /64 locked out: %q", msg)
	}
	if msg := failAfterDelay("::ffff:198.51.100.1"); strings.Contains(msg, "too many") {
		t.Fatalf("an IPv4 source locked out: %q", msg)
	}
}

// BenchmarkProduceUnderBruteForce: the produce latency (p50, p99) of a legitimate SCRAM
// producer (1 KiB records, ProduceSync) while another address fails logins as fast as eight
// connections can — with cmd/gateway's 100 ms failure delay, and without it — beside the
// same producer alone. In-memory connections, the attacker's client in the same process (it
// competes for the same cores); the attacker's attempts per second are reported too.
func BenchmarkProduceUnderBruteForce(b *testing.B) {
	for _, bc := range []struct {
		name   string
		attack bool
		delay  time.Duration
	}{{"quiet", false, 0}, {"attack", true, 100 * time.Millisecond}, {"attack-no-delay", true, 0}} {
		attack := bc.attack
		b.Run(bc.name, func(b *testing.B) {
			// cmd/gateway's defaults: 100 ms failure delay, 20 failures, one forgiven per 3 s.
			p := newPipeServer(b, gateway.SASLConfig{FailedAuthDelay: bc.delay, BruteForce: gateway.BruteForceConfig{Burst: 20, Refill: 3 * time.Second}}, "alice", "bob")
			prod := p.kgoFrom(b, "10.0.0.7", "bob", kgo.AllowAutoTopicCreation())
			if err := prod.ProduceSync(context.Background(), &kgo.Record{Topic: "orders"}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var tries atomic.Int64
			if attack {
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							select {
							case <-stop:
								return
							default:
							}
							p.plainAttempt(b, "192.0.2.66", "alice", "guess")
							tries.Add(1)
						}
					}()
				}
			}
			lat := make([]time.Duration, 0, b.N)
			rec := &kgo.Record{Topic: "orders", Value: make([]byte, 1024)}
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				t0 := time.Now()
				if err := prod.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			elapsed := time.Since(start)
			b.StopTimer()
			close(stop)
			wg.Wait()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			if attack {
				b.ReportMetric(float64(tries.Load())/elapsed.Seconds(), "attempts/s")
			}
		})
	}
}
