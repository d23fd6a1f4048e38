package kafka_test

// Produce and consume with real Kafka clients — franz-go kgo, segmentio/kafka-go (Writer and
// Reader) and librdkafka through kcat — against the gateway and the real broker in process.
// For each client, every compression codec it offers, on 1 and 8 partitions: records are
// produced, the whole stack is restarted on the same data directory, and a consumer started
// after the restart must see every record byte-exact (key, value, headers, timestamp), in
// produce order per partition, with contiguous offsets from 0, and stored with the codec the
// producer used (checked through kgo, which exposes batch attributes).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	segkafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

// rcMsg is a client-neutral record.
type rcMsg struct {
	key, value []byte
	headers    [][2]string
	ts         int64 // unix ms; 0 = set by the client (kcat)
	partition  int32
	offset     int64
	codec      uint8 // compression type of the stored batch, as kgo reports it
}

var rcCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

func rcCodecID(name string) uint8 {
	return uint8(slices.Index(rcCodecs, name)) // Kafka's attribute numbering matches the list order
}

// rcGen builds n records; printable ones avoid tabs, newlines, commas and '=' for kcat.
func rcGen(prefix string, n int, printable bool) []rcMsg {
	base := time.Now().Add(-time.Hour).UnixMilli()
	out := make([]rcMsg, n)
	for i := range out {
		m := &out[i]
		m.key = []byte(fmt.Sprintf("%s-key-%04d", prefix, i))
		if printable {
			m.value = []byte(fmt.Sprintf("value %d %s", i, strings.Repeat("abcdefgh", i%17)))
			m.headers = [][2]string{{"trace", "t-1"}, {"origin", "kcat"}}
			continue
		}
		m.value = bytes.Repeat([]byte{byte(i), 0, 0xff, '\n'}, 1+i%40)
		m.headers = [][2]string{{"h1", string([]byte{0, byte(i), 0xfe})}, {"h2", fmt.Sprintf("n=%d", i)}}
		m.ts = base + int64(i)
	}
	return out
}

// rcVerify checks got against want: same records by key, byte-exact, produce order within
// each partition, contiguous offsets from 0.
func rcVerify(t *testing.T, what string, want, got []rcMsg, checkTS bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d records, want %d", what, len(got), len(want))
	}
	idx := map[string]int{}
	for i, m := range want {
		idx[string(m.key)] = i
	}
	byPart := map[int32][]rcMsg{}
	for _, g := range got {
		byPart[g.partition] = append(byPart[g.partition], g)
	}
	for p, ms := range byPart {
		slices.SortFunc(ms, func(a, b rcMsg) int { return int(a.offset - b.offset) })
		last := -1
		for i, g := range ms {
			if g.offset != int64(i) {
				t.Fatalf("%s: partition %d: offset %d at position %d", what, p, g.offset, i)
			}
			wi, ok := idx[string(g.key)]
			if !ok {
				t.Fatalf("%s: unexpected key %q", what, g.key)
			}
			if wi <= last {
				t.Fatalf("%s: partition %d: key %q out of produce order", what, p, g.key)
			}
			last = wi
			w := want[wi]
			if !bytes.Equal(g.value, w.value) || !slices.Equal(g.headers, w.headers) {
				t.Fatalf("%s: key %q: got value %q headers %q, want %q %q", what, g.key, g.value, g.headers, w.value, w.headers)
			}
			if checkTS && w.ts != 0 && g.ts != w.ts {
				t.Fatalf("%s: key %q: timestamp %d, want %d", what, g.key, g.ts, w.ts)
			}
		}
	}
}

// rcConsumeKgo reads every record of topic (up to the end offsets) with kgo.
func rcConsumeKgo(t *testing.T, s *rcStack, topic string) []rcMsg {
	t.Helper()
	total := int64(0)
	for _, o := range s.endOffsets(t, topic) {
		total += o
	}
	cl := s.kgo(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []rcMsg
	for int64(len(out)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kgo consume %s: %d of %d records", topic, len(out), total)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("kgo fetch %s/%d: %v", tp, p, err) })
		for _, r := range fs.Records() {
			m := rcMsg{key: r.Key, value: r.Value, ts: r.Timestamp.UnixMilli(), partition: r.Partition, offset: r.Offset, codec: r.Attrs.CompressionType()}
			for _, h := range r.Headers {
				m.headers = append(m.headers, [2]string{h.Key, string(h.Value)})
			}
			out = append(out, m)
		}
	}
	cl.Close()
	return out
}

type rcClient struct {
	name      string
	printable bool
	produce   func(t *testing.T, s *rcStack, topic, codec string, msgs []rcMsg)
	consume   func(t *testing.T, s *rcStack, topic string) []rcMsg
}

func kgoClient() rcClient {
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	return rcClient{
		name: "kgo",
		produce: func(t *testing.T, s *rcStack, topic, codec string, msgs []rcMsg) {
			cl := s.kgo(t, kgo.ProducerBatchCompression(codecs[codec]), kgo.RequiredAcks(kgo.AllISRAcks()))
			recs := make([]*kgo.Record, len(msgs))
			for i, m := range msgs {
				r := &kgo.Record{Topic: topic, Key: m.key, Value: m.value, Timestamp: time.UnixMilli(m.ts)}
				for _, h := range m.headers {
					r.Headers = append(r.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
				}
				recs[i] = r
			}
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				t.Fatalf("kgo produce: %v", err)
			}
			cl.Close()
		},
		consume: rcConsumeKgo,
	}
}

func kafkaGoClient() rcClient {
	codecs := map[string]segkafka.Compression{"gzip": segkafka.Gzip, "snappy": segkafka.Snappy, "lz4": segkafka.Lz4, "zstd": segkafka.Zstd}
	return rcClient{
		name: "kafka-go",
		produce: func(t *testing.T, s *rcStack, topic, codec string, msgs []rcMsg) {
			w := &segkafka.Writer{
				Addr: segkafka.TCP(s.addr), Topic: topic, Balancer: &segkafka.Hash{},
				Compression: codecs[codec], RequiredAcks: segkafka.RequireAll,
				BatchTimeout: 5 * time.Millisecond, BatchSize: len(msgs),
				// A transport per writer: kafka-go's shared DefaultTransport caches metadata
				// for seconds and would not see the topic created just before.
				Transport: &segkafka.Transport{},
			}
			kms := make([]segkafka.Message, len(msgs))
			for i, m := range msgs {
				kms[i] = segkafka.Message{Key: m.key, Value: m.value, Time: time.UnixMilli(m.ts)}
				for _, h := range m.headers {
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
		consume: func(t *testing.T, s *rcStack, topic string) []rcMsg {
			var out []rcMsg
			for p, end := range s.endOffsets(t, topic) {
				if end == 0 {
					continue
				}
				r := segkafka.NewReader(segkafka.ReaderConfig{
					Brokers: []string{s.addr}, Topic: topic, Partition: int(p),
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
					m := rcMsg{key: km.Key, value: km.Value, ts: km.Time.UnixMilli(), partition: int32(km.Partition), offset: km.Offset}
					for _, h := range km.Headers {
						m.headers = append(m.headers, [2]string{h.Key, string(h.Value)})
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

func kcatClient(bin string) rcClient {
	return rcClient{
		name:      "kcat",
		printable: true,
		produce: func(t *testing.T, s *rcStack, topic, codec string, msgs []rcMsg) {
			var in bytes.Buffer
			for _, m := range msgs {
				fmt.Fprintf(&in, "%s\t%s\n", m.key, m.value)
			}
			args := []string{"-b", s.addr, "-P", "-t", topic, "-K", "\t", "-z", codec, "-X", "acks=all"}
			for _, h := range msgs[0].headers {
				args = append(args, "-H", h[0]+"="+h[1])
			}
			cmd := exec.Command(bin, args...)
			cmd.Stdin = &in
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kcat produce: %v\n%s", err, out)
			}
		},
		consume: func(t *testing.T, s *rcStack, topic string) []rcMsg {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-b", s.addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
				"-f", "%p\t%o\t%T\t%k\t%s\t%h\n")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			outb, err := cmd.Output()
			if err != nil {
				t.Fatalf("kcat consume: %v\n%s", err, stderr.Bytes())
			}
			var out []rcMsg
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
				m := rcMsg{partition: int32(p), offset: o, ts: ts, key: []byte(f[3]), value: []byte(f[4])}
				for _, kv := range strings.Split(f[5], ",") {
					k, v, _ := strings.Cut(kv, "=")
					m.headers = append(m.headers, [2]string{k, v})
				}
				out = append(out, m)
			}
			return out
		},
	}
}

func TestRealClients(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	clients := []rcClient{kgoClient(), kafkaGoClient()}
	bin, kcatErr := exec.LookPath("kcat")
	clients = append(clients, kcatClient(bin))
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "kcat" && kcatErr != nil {
				t.Skip("kcat not installed (apt-get install -y kcat): librdkafka not covered in this run")
			}
			s := rcStart(t, t.TempDir(), "")
			type produced struct {
				topic, codec string
				want         []rcMsg
			}
			var all []produced
			for _, parts := range []int32{1, 8} {
				for _, codec := range rcCodecs {
					topic := fmt.Sprintf("%s-p%d-%s", c.name, parts, codec)
					s.createTopic(t, topic, parts)
					want := rcGen(topic, 120, c.printable)
					c.produce(t, s, topic, codec, want)
					all = append(all, produced{topic, codec, want})
				}
			}
			// Full restart: the consumers below start on a freshly opened broker.
			s = s.restart()
			for _, p := range all {
				got := c.consume(t, s, p.topic)
				rcVerify(t, c.name+" consumer "+p.topic, p.want, got, true)
				// Cross-check through kgo: same bytes, and the batch codec as produced.
				viaKgo := rcConsumeKgo(t, s, p.topic)
				rcVerify(t, "kgo consumer "+p.topic, p.want, viaKgo, true)
				// Clients may send a batch uncompressed when compression does not shrink it
				// (librdkafka does), so every batch is either uncompressed or in the
				// producer's codec, and with compression on, most are compressed.
				parts := map[int32]bool{}
				compressed := 0
				for _, m := range viaKgo {
					parts[m.partition] = true
					switch m.codec {
					case rcCodecID(p.codec):
						compressed++
					case 0:
					default:
						t.Fatalf("%s: stored batch codec %d, produced with %s", p.topic, m.codec, p.codec)
					}
				}
				if p.codec != "none" && compressed < len(viaKgo)/2 {
					t.Fatalf("%s: only %d of %d records stored %s-compressed", p.topic, compressed, len(viaKgo), p.codec)
				}
				for i := range got { // the client sees the timestamps kgo sees
					if k := slices.IndexFunc(viaKgo, func(m rcMsg) bool { return bytes.Equal(m.key, got[i].key) }); k < 0 || viaKgo[k].ts != got[i].ts {
						t.Fatalf("%s: key %q timestamp differs between %s and kgo", p.topic, got[i].key, c.name)
					}
				}
				if strings.Contains(p.topic, "-p8-") && len(parts) < 4 {
					t.Fatalf("%s: records landed in only %d of 8 partitions", p.topic, len(parts))
				}
			}
		})
	}
}

// TestKcatList: `kcat -L` (the README's first command) lists the gateway as the only broker
// and every topic with its partition count, and creates nothing.
func TestKcatList(t *testing.T) {
	bin, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed (apt-get install -y kcat)")
	}
	s := rcStart(t, t.TempDir(), "")
	s.createTopic(t, "one", 1)
	s.createTopic(t, "eight", 8)
	out, err := exec.Command(bin, "-b", s.addr, "-L").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -L: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		" 1 brokers:", "broker 0 at " + s.addr + " (controller)", " 2 topics:",
		`topic "one" with 1 partitions:`, `topic "eight" with 8 partitions:`,
		"partition 7, leader 0, replicas: 0, isrs: 0",
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("kcat -L output lacks %q:\n%s", want, text)
		}
	}
	// kcat is a librdkafka producer, which asks for auto-creation unless told not to.
	out, err = exec.Command(bin, "-b", s.addr, "-L", "-t", "absent", "-X", "allow.auto.create.topics=false").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -L -t absent: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Broker: Unknown topic or partition") {
		t.Fatalf("absent topic listed without error:\n%s", out)
	}
	out, err = exec.Command(bin, "-b", s.addr, "-L").CombinedOutput()
	if err != nil || !strings.Contains(string(out), " 2 topics:") {
		t.Fatalf("kcat -L created the absent topic: %v\n%s", err, out)
	}
	// With auto-creation allowed (librdkafka's producer default), it is created, as Kafka does.
	out, err = exec.Command(bin, "-b", s.addr, "-L", "-t", "created").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `topic "created" with 1 partitions:`) {
		t.Fatalf("kcat -L -t created: %v\n%s", err, out)
	}
}
