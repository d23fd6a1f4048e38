package meshkafka_test

// Real clients through gateway -> mesh -> broker processes: kgo, segmentio/kafka-go (Writer and
// Reader) and librdkafka through kcat produce and consume every codec on 1 and 8 partitions;
// records must come back byte-exact (key, value, headers, timestamp), in produce order per
// partition, with contiguous offsets from 0, stored with the producer's codec (checked via kgo,
// which exposes batch attributes). The client recipes follow interop/kafka.

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"testing"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// meshPair starts one broker and one gateway in mesh mode, wired as scripts/up.sh does:
// gateway identity first, the broker trusts it, the gateway gets the broker's addr file.
func meshPair(t testing.TB) (*brokerNode, *gatewayNode) {
	t.Helper()
	g := newGatewayIdentity(t, "gateway")
	b := newBroker(t, "broker", g.id)
	g.startMesh(t, b)
	return b, g
}

// storedCheck is a topic whose records must be found in the broker's data directory.
type storedCheck struct {
	topic string
	parts map[int32]bool
}

func TestMeshRealClients(t *testing.T) {
	b, g := meshPair(t)
	var stored []storedCheck // checked once the broker has stopped (see below)
	kcatBin, kcatErr := exec.LookPath("kcat")
	clients := []kafkaclients.Client{kafkaclients.Kgo(), kafkaclients.KafkaGo(), {Name: "kcat"}}
	for _, c := range clients {
		t.Run(c.Name, func(t *testing.T) {
			if c.Name == "kcat" {
				if kcatErr != nil {
					t.Skipf("kcat binary not found (%v): librdkafka is not covered in this run; apt-get install -y kcat", kcatErr)
				}
				c = kafkaclients.Kcat(kcatBin)
			}
			for _, parts := range []int32{1, 8} {
				for _, codec := range kafkaclients.Codecs {
					topic := fmt.Sprintf("%s-p%d-%s", c.Name, parts, codec)
					createTopic(t, g.addr, topic, parts, nil)
					want := kafkaclients.Gen(topic, 80, c.Printable)
					c.Produce(t, g.addr, topic, codec, want)
					got := c.Consume(t, g.addr, topic)
					kafkaclients.Verify(t, c.Name+" consumer "+topic, want, got, true)
					// Cross-check through kgo: same bytes, and the batch codec as produced.
					viaKgo := kafkaclients.ConsumeKgo(t, g.addr, topic)
					kafkaclients.Verify(t, "kgo consumer "+topic, want, viaKgo, true)
					// Clients may send a batch uncompressed when compression does not shrink
					// it (librdkafka does): every batch is uncompressed or in the producer's
					// codec, and with compression on, most are compressed.
					seenParts := map[int32]bool{}
					compressed := 0
					for _, m := range viaKgo {
						seenParts[m.Partition] = true
						switch m.Codec {
						case kafkaclients.CodecID(codec):
							compressed++
						case 0:
						default:
							t.Fatalf("%s: stored batch codec %d, produced with %s", topic, m.Codec, codec)
						}
					}
					if codec != "none" && compressed < len(viaKgo)/2 {
						t.Fatalf("%s: only %d of %d records stored %s-compressed", topic, compressed, len(viaKgo), codec)
					}
					for i := range got { // the client sees the timestamps kgo sees
						if k := slices.IndexFunc(viaKgo, func(m kafkaclients.Msg) bool { return bytes.Equal(m.Key, got[i].Key) }); k < 0 || viaKgo[k].TS != got[i].TS {
							t.Fatalf("%s: key %q timestamp differs between %s and kgo", topic, got[i].Key, c.Name)
						}
					}
					if parts == 8 && len(seenParts) < 4 {
						t.Fatalf("%s: records landed in only %d of 8 partitions", topic, len(seenParts))
					}
					stored = append(stored, storedCheck{topic, seenParts})
				}
			}
		})
	}
	if err := g.p.Stop(); err != nil {
		t.Errorf("gateway SIGTERM: %v\n%s", err, g.p.Logs())
	}
	if err := b.p.Stop(); err != nil {
		t.Errorf("broker SIGTERM: %v\n%s", err, b.p.Logs())
	}
	// The records went through the mesh: they are stored in the broker process's data
	// directory. A partition's files are made by the wal's first checkpoint, or at the
	// latest when the broker closes (its records are durable in the commit journal before
	// that), so this is checked after the SIGTERM.
	for _, c := range stored {
		onDisk := partitionBytes(b.dir, c.topic)
		for p := range c.parts {
			if onDisk[p] == 0 {
				t.Errorf("%s: partition %d has records but nothing under the broker's data dir %s", c.topic, p, b.dir)
			}
		}
	}
}
