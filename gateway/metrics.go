package gateway

import (
	"context"
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
type serverMetrics struct {
	duration metric.Float64Histogram
	reqBytes metric.Int64Counter
	conns    metric.Int64UpDownCounter
	byKey    map[int16]metric.MeasurementOption
}

func newServerMetrics() *serverMetrics {
	m := telemetry.Meter()
	sm := &serverMetrics{byKey: map[int16]metric.MeasurementOption{}}
	sm.duration, _ = m.Float64Histogram("kafka.server.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Kafka requests answered by the gateway, by API"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	sm.reqBytes, _ = m.Int64Counter("kafka.server.request.size", metric.WithUnit("By"),
		metric.WithDescription("bytes of Kafka request frames, by API"))
	sm.conns, _ = m.Int64UpDownCounter("kafka.server.connections", metric.WithDescription("open Kafka client connections"))
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
