package kafka_test

// Produce and consume with real Kafka clients — franz-go kgo, segmentio/kafka-go (Writer and
// Reader) and librdkafka through kcat — against the gateway and the real broker in process.
// For each client, every compression codec it offers, on 1 and 8 partitions: records are
// produced, the whole stack is restarted on the same data directory, and a consumer started
// after the restart must see every record byte-exact (key, value, headers, timestamp), in
// produce order per partition, with contiguous offsets from 0, and stored with the codec the
// producer used (checked through kgo, which exposes batch attributes).

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

func TestRealClients(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	clients := []kafkaclients.Client{kafkaclients.Kgo(), kafkaclients.KafkaGo()}
	bin, kcatErr := exec.LookPath("kcat")
	clients = append(clients, kafkaclients.Kcat(bin))
	for _, c := range clients {
		t.Run(c.Name, func(t *testing.T) {
			if c.Name == "kcat" && kcatErr != nil {
				t.Skip("kcat not installed (apt-get install -y kcat): librdkafka not covered in this run")
			}
			s := rcStart(t, t.TempDir(), "")
			type produced struct {
				topic, codec string
				want         []kafkaclients.Msg
			}
			var all []produced
			for _, parts := range []int32{1, 8} {
				for _, codec := range kafkaclients.Codecs {
					topic := fmt.Sprintf("%s-p%d-%s", c.Name, parts, codec)
					s.createTopic(t, topic, parts)
					want := kafkaclients.Gen(topic, 120, c.Printable)
					c.Produce(t, s.addr, topic, codec, want)
					all = append(all, produced{topic, codec, want})
				}
			}
			// Full restart: the consumers below start on a freshly opened broker.
			s = s.restart()
			for _, p := range all {
				got := c.Consume(t, s.addr, p.topic)
				kafkaclients.Verify(t, c.Name+" consumer "+p.topic, p.want, got, true)
				// Cross-check through kgo: same bytes, and the batch codec as produced.
				viaKgo := kafkaclients.ConsumeKgo(t, s.addr, p.topic)
				kafkaclients.Verify(t, "kgo consumer "+p.topic, p.want, viaKgo, true)
				// Clients may send a batch uncompressed when compression does not shrink it
				// (librdkafka does), so every batch is either uncompressed or in the
				// producer's codec, and with compression on, most are compressed.
				parts := map[int32]bool{}
				compressed := 0
				for _, m := range viaKgo {
					parts[m.Partition] = true
					switch m.Codec {
					case kafkaclients.CodecID(p.codec):
						compressed++
					case 0:
					default:
						t.Fatalf("%s: stored batch codec %d, produced with %s", p.topic, m.Codec, p.codec)
					}
				}
				if p.codec != "none" && compressed < len(viaKgo)/2 {
					t.Fatalf("%s: only %d of %d records stored %s-compressed", p.topic, compressed, len(viaKgo), p.codec)
				}
				for i := range got { // the client sees the timestamps kgo sees
					if k := slices.IndexFunc(viaKgo, func(m kafkaclients.Msg) bool { return bytes.Equal(m.Key, got[i].Key) }); k < 0 || viaKgo[k].TS != got[i].TS {
						t.Fatalf("%s: key %q timestamp differs between %s and kgo", p.topic, got[i].Key, c.Name)
					}
				}
				if strings.Contains(p.topic, "-p8-") && len(parts) < 4 {
					t.Fatalf("%s: records landed in only %d of 8 partitions", p.topic, len(parts))
				}
			}
		})
	}
}

// kcatBin returns kcat's path, skipping t where kcat (librdkafka's client) is not installed.
func kcatBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed (apt-get install -y kcat)")
	}
	return bin
}

// TestKcatList: `kcat -L` (the README's first command) lists the gateway as the only broker
// and every topic with its partition count, and creates nothing.
func TestKcatList(t *testing.T) {
	bin := kcatBin(t)
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
