package gateway_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
)

// quotaBackend is the in-memory backend with fixed client quotas.
type quotaBackend struct {
	*gatewaytest.MemBackend
	entries []brokerop.QuotaEntry
}

func (q *quotaBackend) DescribeClientQuotas(context.Context, *brokerop.DescribeClientQuotasReq) (*brokerop.DescribeClientQuotasResp, error) {
	return &brokerop.DescribeClientQuotasResp{Entries: q.entries}, nil
}

func strp(s string) *string { return &s }

// waitTimer spins until the fake clock has n armed timers (a muted reader has set its own).
func waitTimer(t *testing.T, fc *clock.Fake, n int) {
	t.Helper()
	for fc.Waiting() != n {
		runtime.Gosched()
	}
}

// A producer over producer_byte_rate is answered at once with throttle_time_ms = debt / rate,
// and its connection reads nothing more until that time has passed; another client id is
// not throttled.
func TestProduceQuotaThrottles(t *testing.T) {
	fc := clock.NewFake(time.Unix(1000, 0))
	be := &quotaBackend{MemBackend: gatewaytest.NewMem(1), entries: []brokerop.QuotaEntry{{
		Entity: []brokerop.QuotaEntityPart{{Type: "client-id", Name: strp("raw")}},
		Values: []brokerop.QuotaValue{{Key: "producer_byte_rate", Value: "1000"}},
	}}}
	ts := start(t, gateway.Config{Backend: be, Quotas: gateway.QuotaConfig{Clock: fc}})
	c := dial(t, ts.addr)
	createTopic(t, c, "q", 1)

	req := produceReq(7, "q", 0, batch(150))
	size := len(encode(req, 1)) - 4 // the frame the gateway charges: without its length prefix
	if size <= 1000 {
		t.Fatalf("request of %d bytes does not exceed the 1000-byte burst", size)
	}
	// The bucket starts full (one second of quota): the debt is size - 1000 bytes.
	resp := c.roundTrip(req, 1).(*kmsg.ProduceResponse)
	wantMs := int32(size - 1000)
	if resp.ThrottleMillis != wantMs || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("throttle %d ms (error %d), want %d ms", resp.ThrottleMillis, resp.Topics[0].Partitions[0].ErrorCode, wantMs)
	}
	// Muted: the next request is read only once the throttle time has passed.
	waitTimer(t, fc, 1)
	c.write(encode(kmsg.NewPtrApiVersionsRequest(), 2))
	fc.Advance(time.Duration(wantMs)*time.Millisecond - time.Millisecond)
	if fc.Waiting() != 1 {
		t.Fatal("the mute ended before the throttle time passed")
	}
	fc.Advance(time.Millisecond)
	c.readResponse(kmsg.NewPtrApiVersionsRequest(), 2)

	// Refilled by exactly the time that passed: the debt is gone, a second of quota has not
	// accumulated, so the next large request is throttled for its whole size.
	resp = c.roundTrip(produceReq(7, "q", 0, batch(150)), 3).(*kmsg.ProduceResponse)
	if ms := resp.ThrottleMillis; ms != int32(size) && ms != int32(size)+1 { // +1: rounding of the float bucket
		t.Fatalf("second throttle %d ms, want %d", ms, size)
	}
	waitTimer(t, fc, 1)
	fc.Advance(time.Duration(size) * time.Millisecond)

	// Another client id has no quota.
	other := dial(t, ts.addr)
	other.write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("free")).AppendRequest(nil, produceReq(7, "q", 0, batch(150)), 4))
	if r := other.readResponse(produceReq(7, "q", 0, nil), 4).(*kmsg.ProduceResponse); r.ThrottleMillis != 0 {
		t.Fatalf("unquoted client throttled %d ms", r.ThrottleMillis)
	}
}

// consumer_byte_rate on the default client id gives every client id its own bucket, charged
// with the record bytes of its fetch answers.
func TestFetchQuotaDefaultEntityPerClient(t *testing.T) {
	fc := clock.NewFake(time.Unix(1000, 0))
	be := &quotaBackend{MemBackend: gatewaytest.NewMem(1), entries: []brokerop.QuotaEntry{{
		Entity: []brokerop.QuotaEntityPart{{Type: "client-id"}},
		Values: []brokerop.QuotaValue{{Key: "consumer_byte_rate", Value: "100"}},
	}}}
	ts := start(t, gateway.Config{Backend: be, Quotas: gateway.QuotaConfig{Clock: fc}})
	c := dial(t, ts.addr)
	createTopic(t, c, "f", 1)
	c.roundTrip(produceReq(7, "f", 0, batch(20)), 1)
	fetch := func(client string, corr int32) *kmsg.FetchResponse {
		req := fetchReq("f")
		req.SetVersion(11)
		req.SessionEpoch = -1
		conn := dial(t, ts.addr)
		conn.write(kmsg.NewRequestFormatter(kmsg.FormatterClientID(client)).AppendRequest(nil, req, corr))
		return conn.readResponse(req, corr).(*kmsg.FetchResponse)
	}
	for i, client := range []string{"a", "b"} {
		resp := fetch(client, int32(10+i))
		n := len(resp.Topics[0].Partitions[0].RecordBatches)
		if n <= 100 {
			t.Fatalf("fetched %d bytes, not above the 100-byte burst", n)
		}
		want := int32((n - 100) * 10) // (n-100) bytes of debt at 100 B/s
		if ms := resp.ThrottleMillis; ms != want && ms != want+1 {
			t.Fatalf("client %s: throttle %d ms, want %d (own bucket per client id)", client, ms, want)
		}
	}
}
