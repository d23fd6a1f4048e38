package repl_test

// Client behaviour through a partition leader's SIGKILL: producers and consumers of other
// client libraries than kgo (which the fault tests' workload uses) must carry on with no error
// reaching the application beyond their own retries. kafka-go (segmentio: Writer and Reader)
// and librdkafka (kcat, idempotent producer) are covered; kafkajs and confluent-kafka are not
// installed under interop/ and are not covered here.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	segkafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/meshkafka/meshkafka/interop/checker"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// clientRecords is how many records each client produces; the leader is killed once a third
// of them are stored.
const clientRecords = 300

// net is where a client library runs: its dialer (Go libraries) and how to run a command
// (kcat) in the namespace the clients reach the gateways from.
type clientNet struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	command func(ctx context.Context, name string, args ...string) *exec.Cmd
}

// clientNetOf is the hub namespace of a cluster with Netns, the host otherwise.
func clientNetOf(c *cluster.Cluster) clientNet {
	cn := clientNet{dial: c.Dialer(), command: exec.CommandContext}
	if c.Net != nil {
		pid := c.Net.Hub.Pid()
		cn.command = func(ctx context.Context, name string, args ...string) *exec.Cmd {
			return exec.CommandContext(ctx, "nsenter", append([]string{"-t", pid, "-n", "--", name}, args...)...)
		}
	}
	return cn
}

// libClient produces values 0..n-1 (in order, one at a time or pipelined as the library does,
// retrying as configured) and consumes partition 0 of a topic from the start until it has
// read every value; each returns the first error that reached the application.
type libClient struct {
	name string
	// idempotent: the producer dedups its retries, so every value must be stored once.
	idempotent bool
	available  func() error
	produce    func(ctx context.Context, cn clientNet, addr, topic string, n int) error
	consume    func(ctx context.Context, cn clientNet, addr, topic string, n int) ([]string, error)
}

func libClients() []libClient {
	return []libClient{
		{
			name:      "kafka-go",
			available: func() error { return nil },
			produce: func(ctx context.Context, cn clientNet, addr, topic string, n int) error {
				w := &segkafka.Writer{Addr: segkafka.TCP(addr), Topic: topic, RequiredAcks: segkafka.RequireAll,
					BatchTimeout: time.Millisecond, MaxAttempts: 1000, WriteBackoffMin: 50 * time.Millisecond, WriteBackoffMax: 500 * time.Millisecond,
					Transport: &segkafka.Transport{MetadataTTL: 500 * time.Millisecond, Dial: cn.dial}}
				defer w.Close()
				for i := range n {
					if err := w.WriteMessages(ctx, segkafka.Message{Value: []byte(strconv.Itoa(i))}); err != nil {
						return fmt.Errorf("kafka-go write %d: %w", i, err)
					}
					time.Sleep(5 * time.Millisecond)
				}
				return nil
			},
			consume: func(ctx context.Context, cn clientNet, addr, topic string, n int) ([]string, error) {
				r := segkafka.NewReader(segkafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: 0,
					Dialer:   &segkafka.Dialer{DialFunc: cn.dial, Timeout: 10 * time.Second},
					MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond, MaxAttempts: 1000})
				defer r.Close()
				var got []string
				seen := map[string]bool{}
				for len(seen) < n {
					m, err := r.ReadMessage(ctx)
					if err != nil {
						return got, fmt.Errorf("kafka-go read after %d values: %w", len(seen), err)
					}
					got = append(got, string(m.Value))
					seen[string(m.Value)] = true
				}
				return got, nil
			},
		},
		{
			name:       "kcat",
			idempotent: true,
			available: func() error {
				_, err := exec.LookPath("kcat")
				return err
			},
			produce: func(ctx context.Context, cn clientNet, addr, topic string, n int) error {
				cmd := cn.command(ctx, "kcat", "-b", addr, "-P", "-t", topic, "-p", "0",
					"-X", "acks=all", "-X", "enable.idempotence=true", "-X", "message.timeout.ms=120000", "-X", "linger.ms=1",
					"-X", "topic.metadata.refresh.interval.ms=1000")
				in, err := cmd.StdinPipe()
				if err != nil {
					return err
				}
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					return err
				}
				for i := range n {
					if _, err := fmt.Fprintf(in, "%d\n", i); err != nil {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				in.Close()
				err = cmd.Wait()
				if err != nil || strings.Contains(stderr.String(), "Delivery failed") {
					return fmt.Errorf("kcat producer: %v\n%s", err, stderr.String())
				}
				return nil
			},
			consume: func(ctx context.Context, cn clientNet, addr, topic string, n int) ([]string, error) {
				cmd := cn.command(ctx, "kcat", "-b", addr, "-C", "-t", topic, "-p", "0", "-o", "beginning",
					"-c", strconv.Itoa(n), "-f", "%s\n", "-q")
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				var got []string
				sc := bufio.NewScanner(bytes.NewReader(out))
				for sc.Scan() {
					got = append(got, sc.Text())
				}
				if err != nil {
					return got, fmt.Errorf("kcat consumer: %v\n%s", err, stderr.String())
				}
				return got, nil
			},
		},
	}
}

// clientsLeaderKill: for each client library, a producer writes 300 values to partition 0
// of a fresh RF=3 topic while a consumer of the same library reads it from the start; once a
// third is stored, the partition's leader is SIGKILLed, and restarted once a record is stored
// again. Neither may see an error; the consumer reads every value; the log (drained with kgo)
// holds every value in produce order, exactly once for an idempotent producer, at least once
// otherwise (kafka-go's Writer is not idempotent: a retried write may be stored twice, which
// is reported).
func clientsLeaderKill(t *testing.T, c *cluster.Cluster) {
	addr := c.Gateways[0].Addr
	cn := clientNetOf(c)
	for _, lc := range libClients() {
		t.Run(lc.name, func(t *testing.T) {
			if err := lc.available(); err != nil {
				t.Skipf("%s not installed (%v): not covered in this run", lc.name, err)
			}
			allLive(t, c) // a previous client's victim may still be rejoining
			cfg := workload.Config{Seeds: seeds(c), Dial: c.Dialer(), Rec: checker.NewRecorder(nil),
				Topic: "clients-" + lc.name, Partitions: 1, ReplicationFactor: rf, ClientOpts: clientOpts}
			createReplicated(t, c, cfg)
			view := settled(t, c, cfg, time.Minute)
			victim := view[0].LeaderProc
			defer deleteTopic(t, cfg)

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			var prodErr, consErr error
			var read []string
			wg.Go(func() { prodErr = lc.produce(ctx, cn, addr, cfg.Topic, clientRecords) })
			wg.Go(func() { read, consErr = lc.consume(ctx, cn, addr, cfg.Topic, clientRecords) })

			adm := kadm.NewClient(cfg.Client(t))
			end := func() (int64, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				o, err := adm.ListEndOffsets(ctx, cfg.Topic)
				if err == nil {
					err = o.Error()
				}
				if err != nil {
					return -1, err
				}
				l, _ := o.Lookup(cfg.Topic, 0)
				return l.Offset, nil
			}
			cluster.WaitFor(t, "a third of the records stored", 2*time.Minute, func() (bool, string) {
				e, err := end()
				return e >= clientRecords/3, fmt.Sprintf("end offset %d (%v)", e, err)
			})
			before, _ := end()
			at := time.Now()
			victim.Kill()
			defer func() { // the next client needs three live brokers, whatever happened here
				if !victim.Running() {
					victim.Start(t)
				}
			}()
			cluster.WaitFor(t, "a record stored after the kill", 2*time.Minute, func() (bool, string) {
				e, err := end()
				return e > before+1, fmt.Sprintf("end offset %d (was %d; %v)", e, before, err)
			})
			t.Logf("killed %s, leader of %s/0, at end offset %d; records stored again %v later", victim.Name, cfg.Topic, before, time.Since(at).Round(time.Millisecond))
			victim.Start(t)
			wg.Wait()
			if prodErr != nil {
				t.Errorf("%s producer: %v", lc.name, prodErr)
			}
			if consErr != nil {
				t.Errorf("%s consumer: %v", lc.name, consErr)
			}

			workload.Final(t, cfg, nil)
			var stored []string
			for _, d := range cfg.Rec.History().Drains {
				for _, r := range d.Records {
					if !r.Control {
						stored = append(stored, r.Value)
					}
				}
			}
			want := make([]string, clientRecords)
			for i := range want {
				want[i] = strconv.Itoa(i)
			}
			firsts, dups := firstOccurrences(stored)
			if !slices.Equal(firsts, want) {
				t.Errorf("%s: the log holds %d distinct values, not 0..%d in order: %v", lc.name, len(firsts), clientRecords-1, abbreviate(firsts))
			}
			if dups > 0 && lc.idempotent {
				t.Errorf("%s: idempotent producer, %d values stored twice", lc.name, dups)
			} else if dups > 0 {
				t.Logf("%s: %d values stored twice (a non-idempotent producer's retries)", lc.name, dups)
			}
			readFirsts, _ := firstOccurrences(read)
			if !slices.Equal(readFirsts, want) {
				t.Errorf("%s consumer read %d distinct values, not 0..%d in order: %v", lc.name, len(readFirsts), clientRecords-1, abbreviate(readFirsts))
			}
		})
	}
}

// firstOccurrences is vs without repeats (first occurrence kept) and how many repeats it had.
func firstOccurrences(vs []string) ([]string, int) {
	seen := map[string]bool{}
	var out []string
	for _, v := range vs {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out, len(vs) - len(out)
}

func abbreviate(vs []string) string {
	if len(vs) <= 20 {
		return fmt.Sprint(vs)
	}
	return fmt.Sprintf("%v … %v", vs[:10], vs[len(vs)-10:])
}
