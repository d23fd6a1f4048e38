package kafkaclients

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	segkafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Msg is a client-neutral record.
type Msg struct {
	Key, Value []byte
	Headers    [][2]string
	TS         int64 // unix ms; 0 = set by the client (kcat)
	Partition  int32
	Offset     int64
	Codec      uint8 // compression type of the stored batch, as kgo reports it
}

var Codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

func CodecID(name string) uint8 {
	return uint8(slices.Index(Codecs, name)) // Kafka's attribute numbering matches the list order
}

// Gen builds n records; printable ones avoid tabs, newlines, commas and '=' for kcat.
func Gen(prefix string, n int, printable bool) []Msg {
	base := time.Now().Add(-time.Hour).UnixMilli()
	out := make([]Msg, n)
	for i := range out {
		m := &out[i]
		m.Key = []byte(fmt.Sprintf("%s-key-%04d", prefix, i))
		if printable {
			m.Value = []byte(fmt.Sprintf("value %d %s", i, strings.Repeat("abcdefgh", i%17)))
			m.Headers = [][2]string{{"trace", "t-1"}, {"origin", "kcat"}}
			continue
		}
		m.Value = bytes.Repeat([]byte{byte(i), 0, 0xff, '\n'}, 1+i%40)
		m.Headers = [][2]string{{"h1", string([]byte{0, byte(i), 0xfe})}, {"h2", fmt.Sprintf("n=%d", i)}}
		m.TS = base + int64(i)
	}
	return out
}

// Verify checks got against want: same records by key, byte-exact, produce order within
// each partition, contiguous offsets from 0.
func Verify(t testing.TB, what string, want, got []Msg, checkTS bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d records, want %d", what, len(got), len(want))
	}
	idx := map[string]int{}
	for i, m := range want {
		idx[string(m.Key)] = i
	}
	byPart := map[int32][]Msg{}
	for _, g := range got {
		byPart[g.Partition] = append(byPart[g.Partition], g)
	}
	for p, ms := range byPart {
		slices.SortFunc(ms, func(a, b Msg) int { return int(a.Offset - b.Offset) })
		last := -1
		for i, g := range ms {
			if g.Offset != int64(i) {
				t.Fatalf("%s: partition %d: offset %d at position %d", what, p, g.Offset, i)
			}
			wi, ok := idx[string(g.Key)]
			if !ok {
				t.Fatalf("%s: unexpected key %q", what, g.Key)
			}
			if wi <= last {
				t.Fatalf("%s: partition %d: key %q out of produce order", what, p, g.Key)
			}
			last = wi
			w := want[wi]
			if !bytes.Equal(g.Value, w.Value) || !slices.Equal(g.Headers, w.Headers) {
				t.Fatalf("%s: key %q: got value %q headers %q, want %q %q", what, g.Key, g.Value, g.Headers, w.Value, w.Headers)
			}
			if checkTS && w.TS != 0 && g.TS != w.TS {
				t.Fatalf("%s: key %q: timestamp %d, want %d", what, g.Key, g.TS, w.TS)
			}
		}
	}
}

// ConsumeKgo reads every record of topic (up to the end offsets) with kgo.
func ConsumeKgo(t testing.TB, addr string, topic string) []Msg {
	t.Helper()
	total := int64(0)
	for _, o := range EndOffsets(t, addr, topic) {
		total += o
	}
	cl := KgoClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []Msg
	for int64(len(out)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kgo consume %s: %d of %d records", topic, len(out), total)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("kgo fetch %s/%d: %v", tp, p, err) })
		for _, r := range fs.Records() {
			m := Msg{Key: r.Key, Value: r.Value, TS: r.Timestamp.UnixMilli(), Partition: r.Partition, Offset: r.Offset, Codec: r.Attrs.CompressionType()}
			for _, h := range r.Headers {
				m.Headers = append(m.Headers, [2]string{h.Key, string(h.Value)})
			}
			out = append(out, m)
		}
	}
	cl.Close()
	return out
}

type Client struct {
	Name      string
	Printable bool
	Produce   func(t testing.TB, addr string, topic, codec string, msgs []Msg)
	Consume   func(t testing.TB, addr string, topic string) []Msg
}

func Kgo() Client {
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	return Client{
		Name: "kgo",
		Produce: func(t testing.TB, addr string, topic, codec string, msgs []Msg) {
			cl := KgoClient(t, addr, kgo.ProducerBatchCompression(codecs[codec]), kgo.RequiredAcks(kgo.AllISRAcks()))
			recs := make([]*kgo.Record, len(msgs))
			for i, m := range msgs {
				r := &kgo.Record{Topic: topic, Key: m.Key, Value: m.Value, Timestamp: time.UnixMilli(m.TS)}
				for _, h := range m.Headers {
					r.Headers = append(r.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
				}
				recs[i] = r
			}
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				t.Fatalf("kgo produce: %v", err)
			}
			cl.Close()
		},
		Consume: ConsumeKgo,
	}
}

func KafkaGo() Client {
	codecs := map[string]segkafka.Compression{"gzip": segkafka.Gzip, "snappy": segkafka.Snappy, "lz4": segkafka.Lz4, "zstd": segkafka.Zstd}
	return Client{
		Name: "kafka-go",
		Produce: func(t testing.TB, addr string, topic, codec string, msgs []Msg) {
			w := &segkafka.Writer{
				Addr: segkafka.TCP(addr), Topic: topic, Balancer: &segkafka.Hash{},
				Compression: codecs[codec], RequiredAcks: segkafka.RequireAll,
				BatchTimeout: 5 * time.Millisecond, BatchSize: len(msgs),
				// A transport per writer: kafka-go's shared DefaultTransport caches metadata
				// for seconds and would not see the topic created just before.
				Transport: &segkafka.Transport{},
			}
			kms := make([]segkafka.Message, len(msgs))
			for i, m := range msgs {
				kms[i] = segkafka.Message{Key: m.Key, Value: m.Value, Time: time.UnixMilli(m.TS)}
				for _, h := range m.Headers {
					kms[i].Headers = append(kms[i].Headers, segkafka.Header{Key: h[0], Value: []byte(h[1])})
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := w.WriteMessages(ctx, kms...); err != nil {
				t.Fatalf("kafka-go write: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			w.Transport.(*segkafka.Transport).CloseIdleConnections()
		},
		Consume: func(t testing.TB, addr string, topic string) []Msg {
			var out []Msg
			for p, end := range EndOffsets(t, addr, topic) {
				if end == 0 {
					continue
				}
				r := segkafka.NewReader(segkafka.ReaderConfig{
					Brokers: []string{addr}, Topic: topic, Partition: int(p),
					MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond,
				})
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				for {
					km, err := r.ReadMessage(ctx)
					if err != nil {
						cancel()
						r.Close()
						t.Fatalf("kafka-go read %s/%d: %v", topic, p, err)
					}
					m := Msg{Key: km.Key, Value: km.Value, TS: km.Time.UnixMilli(), Partition: int32(km.Partition), Offset: km.Offset}
					for _, h := range km.Headers {
						m.Headers = append(m.Headers, [2]string{h.Key, string(h.Value)})
					}
					out = append(out, m)
					if km.Offset == end-1 {
						break
					}
				}
				cancel()
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
			}
			return out
		},
	}
}

func Kcat(bin string) Client {
	return Client{
		Name:      "kcat",
		Printable: true,
		Produce: func(t testing.TB, addr string, topic, codec string, msgs []Msg) {
			var in bytes.Buffer
			for _, m := range msgs {
				fmt.Fprintf(&in, "%s\t%s\n", m.Key, m.Value)
			}
			args := []string{"-b", addr, "-P", "-t", topic, "-K", "\t", "-z", codec, "-X", "acks=all"}
			for _, h := range msgs[0].Headers {
				args = append(args, "-H", h[0]+"="+h[1])
			}
			cmd := exec.Command(bin, args...)
			cmd.Stdin = &in
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kcat produce: %v\n%s", err, out)
			}
		},
		Consume: func(t testing.TB, addr string, topic string) []Msg {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-b", addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
				"-f", "%p\t%o\t%T\t%k\t%s\t%h\n")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			outb, err := cmd.Output()
			if err != nil {
				t.Fatalf("kcat consume: %v\n%s", err, stderr.Bytes())
			}
			var out []Msg
			sc := bufio.NewScanner(bytes.NewReader(outb))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				f := strings.Split(sc.Text(), "\t")
				if len(f) != 6 {
					t.Fatalf("kcat line %q", sc.Text())
				}
				p, _ := strconv.Atoi(f[0])
				o, _ := strconv.ParseInt(f[1], 10, 64)
				ts, _ := strconv.ParseInt(f[2], 10, 64)
				m := Msg{Partition: int32(p), Offset: o, TS: ts, Key: []byte(f[3]), Value: []byte(f[4])}
				for _, kv := range strings.Split(f[5], ",") {
					k, v, _ := strings.Cut(kv, "=")
					m.Headers = append(m.Headers, [2]string{k, v})
				}
				out = append(out, m)
			}
			return out
		},
	}
}

// KgoClient is a franz-go client seeded with addr, closed when the test ends.
func KgoClient(tb testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// BenchProducerOpts are the options of the benchmarks' producers: acks=all, not idempotent,
// round robin over the partitions, up to 64 Ki records buffered and 5 requests in flight per
// broker, no compression (the figures measure the path, not a codec).
func BenchProducerOpts() []kgo.Opt {
	return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedRecords(1 << 16), kgo.MaxProduceRequestsInflightPerBroker(5),
		kgo.ProducerBatchCompression(kgo.NoCompression())}
}

// ProduceAll produces n records of value to topic through cl and flushes: the flush's error,
// else an error counting the records that failed (with the first one's error), else nil.
func ProduceAll(ctx context.Context, cl *kgo.Client, topic string, value []byte, n int) error {
	var failed atomic.Int64
	var firstErr atomic.Value
	for range n {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d of %d records failed, first: %v", f, n, firstErr.Load())
	}
	return nil
}

// ProduceAndEnd produces outs in sess's open transaction and ends it: committed when every
// produce succeeded, aborted otherwise (produceErr then holds a failed produce's error);
// endErr is the end's own error.
func ProduceAndEnd(ctx context.Context, sess *kgo.GroupTransactSession, outs []*kgo.Record) (committed bool, produceErr, endErr error) {
	var perr atomic.Value
	var wg sync.WaitGroup
	for _, r := range outs {
		wg.Add(1)
		sess.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				perr.Store(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	how := kgo.TryCommit
	if perr.Load() != nil {
		how = kgo.TryAbort
		produceErr = perr.Load().(error)
	}
	committed, endErr = sess.End(ctx, how)
	return committed, produceErr, endErr
}

// EndOffsets returns each partition's high watermark of topic, asked through addr.
func EndOffsets(tb testing.TB, addr, topic string) map[int32]int64 {
	tb.Helper()
	adm := kadm.NewClient(KgoClient(tb, addr))
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || lo.Error() != nil {
		tb.Fatalf("end offsets %s via %s: %v %v", topic, addr, err, lo.Error())
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// MetadataTopics returns, sorted, the names of the topics a Metadata request for all topics
// lists to cl: those its principal may describe.
func MetadataTopics(ctx context.Context, tb testing.TB, cl *kgo.Client) []string {
	tb.Helper()
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, tp := range md.Topics {
		names = append(names, *tp.Topic)
	}
	slices.Sort(names)
	return names
}

// PollN polls cl until it has n more records, failing tb on a fetch error or when ctx ends
// first.
func PollN(ctx context.Context, tb testing.TB, cl *kgo.Client, n int) {
	tb.Helper()
	for got := 0; got < n; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("consumed %d of %d", got, n)
		}
		fs.EachError(func(t string, p int32, err error) { tb.Fatalf("fetch %s/%d: %v", t, p, err) })
		got += fs.NumRecords()
	}
}

// WaitFor polls cond every 50 ms until it holds, failing tb, with what it waited for, when ctx
// (the test's overall bound, not a timing check) ends first.
func WaitFor(tb testing.TB, ctx context.Context, what string, cond func() bool) {
	tb.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			tb.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ReadValues reads topic through addr from the start, with read_committed (committed) or
// read_uncommitted, until want values came or timeout passed, then polls a few more times
// so that anything beyond want shows up too; the values in the order read.
func ReadValues(tb testing.TB, addr, topic string, committed bool, want int, timeout time.Duration) []string {
	tb.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl := KgoClient(tb, addr, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var got []string
	for len(got) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for range 3 {
		pctx, pcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		pcancel()
	}
	return got
}

// ProduceTxn produces values in one transaction of cl (value i to partition i%2, for a
// manual partitioner) and commits it, or aborts it when commit is false; a failed produce
// aborts and returns its error.
func ProduceTxn(ctx context.Context, cl *kgo.Client, commit bool, values ...string) error {
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	for i, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v), Partition: int32(i % 2)}).FirstErr(); err != nil {
			cl.EndTransaction(ctx, kgo.TryAbort)
			return err
		}
	}
	return cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
}
