package kafka_test

// Idempotent producers through the gateway and the real broker: kgo (idempotent by default)
// with produce answers cut off after the broker stored the batch, so kgo retries batches the
// broker already has. Every record must be stored exactly once; the same load with
// idempotence off stores duplicates (showing the cut really causes retries of stored data).

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// ackDropper dials for kgo and, on a share of connections, drops the connection in place of
// delivering a Produce answer: the broker has appended (and, acks=all, fsynced) the batch,
// but the client never learns it.
type ackDropper struct {
	mu    sync.Mutex
	rng   *rand.Rand
	cuts  int
	conns []net.Conn
}

func (d *ackDropper) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
	return &dropConn{Conn: c, d: d, produce: map[int32]bool{}}, nil
}

func (d *ackDropper) cutNow() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rng.IntN(8) == 0 {
		d.cuts++
		return true
	}
	return false
}

func (d *ackDropper) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
}

// dropConn tracks the correlation ids of Produce requests written and reads answers frame by
// frame, so it can drop the connection exactly instead of a Produce answer.
type dropConn struct {
	net.Conn
	d       *ackDropper
	mu      sync.Mutex
	wbuf    []byte
	produce map[int32]bool // correlation ids of Produce requests
	rbuf    []byte         // the current answer frame, being handed out
}

func (c *dropConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.wbuf = append(c.wbuf, p...)
	for len(c.wbuf) >= 12 {
		size := int(binary.BigEndian.Uint32(c.wbuf))
		if len(c.wbuf) < 4+size {
			break
		}
		if key := int16(binary.BigEndian.Uint16(c.wbuf[4:])); key == 0 {
			c.produce[int32(binary.BigEndian.Uint32(c.wbuf[8:]))] = true
		}
		c.wbuf = c.wbuf[4+size:]
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *dropConn) Read(p []byte) (int, error) {
	if len(c.rbuf) == 0 {
		var head [8]byte
		if _, err := io.ReadFull(c.Conn, head[:]); err != nil {
			return 0, err
		}
		size := int(binary.BigEndian.Uint32(head[:]))
		frame := make([]byte, 4+size)
		copy(frame, head[:])
		if _, err := io.ReadFull(c.Conn, frame[8:]); err != nil {
			return 0, err
		}
		corr := int32(binary.BigEndian.Uint32(head[4:]))
		c.mu.Lock()
		isProduce := c.produce[corr]
		delete(c.produce, corr)
		c.mu.Unlock()
		if isProduce && c.d.cutNow() {
			c.Conn.Close()
			return 0, fmt.Errorf("answer to produce %d dropped: %w", corr, net.ErrClosed)
		}
		c.rbuf = frame
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

// produceWithDroppedAcks produces n records to topic through a client whose produce answers
// are dropped at random, and returns how many times each value is stored and how many
// answers were dropped.
func produceWithDroppedAcks(t *testing.T, s *rcStack, topic string, n int, idempotent bool) (stored map[string]int, cuts int) {
	t.Helper()
	d := &ackDropper{rng: rand.New(rand.NewPCG(7, 9))}
	opts := []kgo.Opt{kgo.Dialer(d.dial), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.RetryBackoffFn(func(int) time.Duration { return 5 * time.Millisecond })}
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl := s.kgo(t, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range n {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "v%05d", i)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
		if i%20 == 19 {
			time.Sleep(time.Millisecond) // several produce requests per connection lifetime
		}
	}
	wg.Wait()
	cl.Close()
	d.closeAll()
	if len(errs) > 0 {
		t.Fatalf("%d records failed, first: %v", len(errs), errs[0])
	}
	stored = map[string]int{}
	for _, r := range kafkaclients.ConsumeKgo(t, s.addr, topic) {
		stored[string(r.Value)]++
	}
	return stored, d.cuts
}

func TestIdempotentProduceWithDroppedAnswers(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	s := rcStart(t, t.TempDir(), "")
	const n = 3000
	s.createTopic(t, "idem", 3)
	stored, cuts := produceWithDroppedAcks(t, s, "idem", n, true)
	if cuts == 0 {
		t.Fatal("no produce answer was dropped; the test proves nothing")
	}
	for i := range n {
		if v := fmt.Sprintf("v%05d", i); stored[v] != 1 {
			t.Fatalf("idempotent: %s stored %d times (%d answers dropped)", v, stored[v], cuts)
		}
	}
	if len(stored) != n {
		t.Fatalf("idempotent: %d distinct values stored, want %d", len(stored), n)
	}
	t.Logf("idempotent: %d records exactly once despite %d dropped produce answers", n, cuts)

	// Control: the same load without idempotence stores some records twice.
	s.createTopic(t, "plain", 3)
	stored, cuts = produceWithDroppedAcks(t, s, "plain", n, false)
	dups := 0
	for _, c := range stored {
		dups += c - 1
	}
	if dups == 0 {
		t.Fatalf("without idempotence no record was stored twice (%d answers dropped): the cut did not cause retries of stored batches", cuts)
	}
	t.Logf("control without idempotence: %d duplicates from %d dropped answers", dups, cuts)
}

// TestIdempotentKcat: librdkafka with enable.idempotence=true negotiates InitProducerID with
// the gateway and produces; every message is stored once with contiguous offsets.
func TestIdempotentKcat(t *testing.T) {
	bin := kcatBin(t)
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	s := rcStart(t, t.TempDir(), "")
	s.createTopic(t, "kidem", 2)
	const n = 500
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "k%05d\n", i)
	}
	cmd := exec.Command(bin, "-b", s.addr, "-P", "-t", "kidem", "-X", "enable.idempotence=true", "-X", "debug=eos")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	// librdkafka logs the producer id it was given: proof that idempotence is on.
	if !strings.Contains(string(out), "Acquired PID{Id:") || strings.Contains(string(out), "Fatal") {
		t.Fatalf("kcat did not acquire a producer id:\n%s", out)
	}
	got := map[string]int{}
	for _, m := range kafkaclients.ConsumeKgo(t, s.addr, "kidem") {
		got[string(m.Value)]++
	}
	for i := range n {
		if v := fmt.Sprintf("k%05d", i); got[v] != 1 {
			t.Fatalf("%s stored %d times", v, got[v])
		}
	}
}
