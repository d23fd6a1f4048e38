package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/meshkafka/meshkafka/telemetry"
)

// serverMetrics are the gateway's OpenTelemetry instruments (exported on /metrics when the
// binary sets up metrics; no-ops otherwise):
//
//	kafka.server.request.duration  histogram, seconds, per kafka.api: every request answered
//	                               (its count is the request rate)
//	kafka.server.request.size      counter, bytes of request frames, per kafka.api
//	kafka.server.connections       up-down counter of open client connections
//	meshkafka.topic.bytes          counter, record-batch bytes per topic and direction: in =
//	                               produced and accepted (every partition answered without
//	                               error; all of an acks=0 request), out = fetched
type serverMetrics struct {
	duration   metric.Float64Histogram
	reqBytes   metric.Int64Counter
	conns      metric.Int64UpDownCounter
	topicBytes metric.Int64Counter
	byKey      map[int16]metric.MeasurementOption

	// topics holds the attribute option of each topic and direction (topicDir →
	// metric.AddOption), made once: the produce and fetch paths read it without a lock.
	topics      sync.Map
	topicsMu    sync.Mutex // serialises making new entries (the bound below)
	topicSeries int        // entries made; guarded by topicsMu
}

type topicDir struct {
	topic string
	out   bool
}

// maxTopicSeries bounds the topics the per-topic counter distinguishes (a scrape's size and
// the memory of the attribute cache); topics beyond it are counted under topic="_other".
const maxTopicSeries = 10000

func newServerMetrics() *serverMetrics {
	m := telemetry.Meter()
	sm := &serverMetrics{byKey: map[int16]metric.MeasurementOption{}}
	sm.duration, _ = m.Float64Histogram("kafka.server.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Kafka requests answered by the gateway, by API"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	sm.reqBytes, _ = m.Int64Counter("kafka.server.request.size", metric.WithUnit("By"),
		metric.WithDescription("bytes of Kafka request frames, by API"))
	sm.conns, _ = m.Int64UpDownCounter("kafka.server.connections", metric.WithDescription("open Kafka client connections"))
	sm.topicBytes, _ = m.Int64Counter("meshkafka.topic.bytes", metric.WithUnit("By"),
		metric.WithDescription("record-batch bytes per topic: direction=in produced and accepted, out fetched"))
	for _, a := range APIs() {
		name := kmsg.NameForKey(a.Key)
		if name == "" {
			name = "Unknown"
		}
		sm.byKey[a.Key] = metric.WithAttributeSet(attribute.NewSet(attribute.String("kafka.api", name)))
	}
	return sm
}

func (m *serverMetrics) api(key int16) metric.MeasurementOption {
	if o, ok := m.byKey[key]; ok {
		return o
	}
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("kafka.api", "Unknown")))
}

// request records a request frame of size bytes for key.
func (m *serverMetrics) request(key int16, size int) {
	m.reqBytes.Add(context.Background(), int64(size), m.api(key))
}

// answered records a request of key answered start..now.
func (m *serverMetrics) answered(key int16, start time.Time) {
	m.duration.Record(context.Background(), time.Since(start).Seconds(), m.api(key))
}

// topicOpt is the attribute option of a topic and direction, made once (a lock-free read on
// the produce and fetch paths after that).
func (m *serverMetrics) topicOpt(topic string, out bool) metric.AddOption {
	k := topicDir{topic, out}
	if o, ok := m.topics.Load(k); ok {
		return o.(metric.AddOption)
	}
	m.topicsMu.Lock()
	defer m.topicsMu.Unlock()
	if o, ok := m.topics.Load(k); ok {
		return o.(metric.AddOption)
	}
	if m.topicSeries >= maxTopicSeries {
		k.topic = "_other"
		if o, ok := m.topics.Load(k); ok {
			return o.(metric.AddOption)
		}
	}
	dir := "in"
	if out {
		dir = "out"
	}
	o := metric.WithAttributeSet(attribute.NewSet(attribute.String("topic", k.topic), attribute.String("direction", dir)))
	m.topics.Store(k, o)
	m.topicSeries++
	return o
}

// produced counts the record bytes of req that resp accepted (all of them for acks=0, whose
// resp is nil).
func (m *serverMetrics) produced(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse) {
	if !m.topicBytes.Enabled(context.Background()) {
		return // no meter provider: skip the walk, not only the no-op Add
	}
	for i := range req.Topics {
		t := &req.Topics[i]
		var n int
		for j := range t.Partitions {
			if resp != nil && (i >= len(resp.Topics) || j >= len(resp.Topics[i].Partitions) || resp.Topics[i].Partitions[j].ErrorCode != 0) {
				continue
			}
			n += len(t.Partitions[j].Records)
		}
		if n > 0 {
			m.topicBytes.Add(context.Background(), int64(n), m.topicOpt(t.Topic, false))
		}
	}
}

// fetched counts the record bytes resp carries, per topic; name resolves the topic ids of
// v13+ answers.
func (m *serverMetrics) fetched(resp *kmsg.FetchResponse, name func([16]byte) (string, bool)) {
	if !m.topicBytes.Enabled(context.Background()) {
		return
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		var n int
		for j := range t.Partitions {
			n += len(t.Partitions[j].RecordBatches)
		}
		if n == 0 {
			continue
		}
		topic := t.Topic
		if topic == "" {
			var ok bool
			if topic, ok = name(t.TopicID); !ok {
				topic = "_unknown"
			}
		}
		m.topicBytes.Add(context.Background(), int64(n), m.topicOpt(topic, true))
	}
}
