package broker

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

func (e *env) alterQuotas(entries ...brokerop.AlterClientQuotasEntry) []brokerop.AlterClientQuotasEntryResp {
	e.t.Helper()
	resp, err := e.b.AlterClientQuotas(context.Background(), &brokerop.AlterClientQuotasReq{Entries: entries})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.Entries
}

func (e *env) describeQuotas() []brokerop.QuotaEntry {
	e.t.Helper()
	resp, err := e.b.DescribeClientQuotas(context.Background(), &brokerop.DescribeClientQuotasReq{})
	if err != nil || resp.ErrorCode != 0 {
		e.t.Fatalf("describe quotas: %v %+v", err, resp)
	}
	return resp.Entries
}

// Quotas are durable once answered (a crash right after keeps them); a failed validation
// stores nothing of that entity.
func TestClientQuotasDurable(t *testing.T) {
	e := newEnv(t)
	res := e.alterQuotas(
		brokerop.AlterClientQuotasEntry{Entity: []brokerop.QuotaEntityPart{{Type: "client-id", Name: sp("c1")}}, Ops: []brokerop.QuotaOp{{Key: "producer_byte_rate", Value: "1e6"}}},
		brokerop.AlterClientQuotasEntry{Entity: []brokerop.QuotaEntityPart{{Type: "user"}}, Ops: []brokerop.QuotaOp{{Key: "producer_byte_rate", Value: "0"}}},
		brokerop.AlterClientQuotasEntry{Entity: []brokerop.QuotaEntityPart{{Type: "user"}}, Ops: []brokerop.QuotaOp{{Key: "consumer_byte_rate", Value: "NaN"}}},
		brokerop.AlterClientQuotasEntry{Entity: nil, Ops: []brokerop.QuotaOp{{Key: "consumer_byte_rate", Value: "1"}}},
	)
	if res[0].ErrorCode != 0 || res[1].ErrorCode != kerr.InvalidRequest.Code || res[2].ErrorCode != kerr.InvalidRequest.Code || res[3].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("alter: %+v", res)
	}
	e.crash(nil)
	got := e.describeQuotas()
	if len(got) != 1 || *got[0].Entity[0].Name != "c1" || got[0].Values[0] != (brokerop.QuotaValue{Key: "producer_byte_rate", Value: "1e+06"}) {
		t.Fatalf("after crash: %+v", got)
	}
	// ValidateOnly stores nothing.
	resp, err := e.b.AlterClientQuotas(context.Background(), &brokerop.AlterClientQuotasReq{ValidateOnly: true, Entries: []brokerop.AlterClientQuotasEntry{
		{Entity: []brokerop.QuotaEntityPart{{Type: "client-id", Name: sp("c2")}}, Ops: []brokerop.QuotaOp{{Key: "consumer_byte_rate", Value: "5"}}}}})
	if err != nil || resp.Entries[0].ErrorCode != 0 {
		t.Fatalf("validate only: %v %+v", err, resp)
	}
	e.restart()
	if got := e.describeQuotas(); len(got) != 1 {
		t.Fatalf("validate-only stored: %+v", got)
	}
}

func FuzzDecodeQuotas(f *testing.F) {
	f.Add(encodeQuotas(map[string]*quotaEntry{"k": {Entity: []quotaPart{{Type: "user", Name: sp("a")}, {Type: "client-id"}}, Values: map[string]float64{"producer_byte_rate": 10}}}))
	f.Add(encodeQuotas(nil))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeQuotas(b)
		if err != nil {
			return
		}
		// What is accepted is valid and stable: it encodes to a file that decodes the same.
		again, err := decodeQuotas(encodeQuotas(m))
		if err != nil || len(again) != len(m) {
			t.Fatalf("re-decode: %v (%d vs %d entries)", err, len(again), len(m))
		}
		for k, e := range m {
			if _, msg := normalizeEntity(e.Entity); msg != "" || again[k] == nil {
				t.Fatalf("entry %q accepted but invalid or lost: %s", k, msg)
			}
		}
	})
}
