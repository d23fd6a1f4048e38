package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// DeleteRecords and OffsetForLeaderEpoch reach each partition's owner over the mesh;
// DescribeLogDirs lists every broker's directory; client quotas live on the controller and
// are read back through another gateway.
func TestClusterRecordsAndQuotaOps(t *testing.T) {
	gw1, gw2 := newEP(t), newEP(t)
	bs := startBrokers(t, 3, gw1, gw2)
	c1, c2 := clusterFor(t, gw1, bs), clusterFor(t, gw2, bs)
	ctx := timeoutCtx(t, 30*time.Second)
	if cr, err := c1.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "dr", NumPartitions: 6, ReplicationFactor: 1}}}); err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v %v", cr, err)
	}
	req := &brokerop.ProduceReq{Acks: -1, TimeoutMs: 5000}
	for p := int32(0); p < 6; p++ {
		for i := 0; i < 3; i++ {
			req.Partitions = append(req.Partitions, brokerop.ProducePartition{Topic: "dr", Partition: p,
				Records: encodeRecordBatch(nil, []byte(fmt.Sprint(i)), time.Now())})
		}
	}
	if _, err := c1.Produce(ctx, req); err != nil {
		t.Fatal(err)
	}
	dreq := &brokerop.DeleteRecordsReq{}
	oreq := &brokerop.OffsetForLeaderEpochReq{}
	for p := int32(0); p < 6; p++ {
		dreq.Partitions = append(dreq.Partitions, brokerop.DeleteRecordsPartition{Topic: "dr", Partition: p, Offset: int64(p % 4)})
		oreq.Partitions = append(oreq.Partitions, brokerop.OffsetForLeaderEpochPartition{Topic: "dr", Partition: p})
	}
	dreq.Partitions = append(dreq.Partitions, brokerop.DeleteRecordsPartition{Topic: "dr", Partition: 9, Offset: 1})
	dr, err := c2.DeleteRecords(ctx, dreq)
	if err != nil {
		t.Fatal(err)
	}
	for p, r := range dr.Partitions {
		if p == 6 {
			if r.ErrorCode != errUnknownTopicOrPartition {
				t.Fatalf("partition 9: %+v", r)
			}
		} else if r.ErrorCode != 0 || r.LowWatermark != int64(p%4) {
			t.Fatalf("partition %d: %+v", p, r)
		}
	}
	// The owners moved their starts: gateway 1 lists them.
	lreq := &brokerop.ListOffsetsReq{}
	for p := int32(0); p < 6; p++ {
		lreq.Partitions = append(lreq.Partitions, brokerop.ListOffsetsPartition{Topic: "dr", Partition: p, Timestamp: -2})
	}
	lo, err := c1.ListOffsets(ctx, lreq)
	if err != nil {
		t.Fatal(err)
	}
	for p, r := range lo.Partitions {
		if r.ErrorCode != 0 || r.Offset != int64(p%4) {
			t.Fatalf("earliest of partition %d: %+v", p, r)
		}
	}
	or, err := c1.OffsetForLeaderEpoch(ctx, oreq)
	if err != nil {
		t.Fatal(err)
	}
	for p, r := range or.Partitions {
		if r.ErrorCode != 0 || r.LeaderEpoch != 0 || r.EndOffset != 3 {
			t.Fatalf("epoch end of partition %d: %+v", p, r)
		}
	}
	ld, err := c2.DescribeLogDirs(ctx, &brokerop.DescribeLogDirsReq{All: true})
	if err != nil {
		t.Fatal(err)
	}
	parts := 0
	for _, d := range ld.Dirs {
		for _, p := range d.Partitions {
			if p.Topic == "dr" && p.Size > 0 {
				parts++
			}
		}
	}
	if len(ld.Dirs) != 3 || parts != 6 {
		t.Fatalf("log dirs: %d dirs, %d partitions with data: %+v", len(ld.Dirs), parts, ld.Dirs)
	}
	name := "c"
	ar, err := c1.AlterClientQuotas(ctx, &brokerop.AlterClientQuotasReq{Entries: []brokerop.AlterClientQuotasEntry{{
		Entity: []brokerop.QuotaEntityPart{{Type: "client-id", Name: &name}}, Ops: []brokerop.QuotaOp{{Key: "producer_byte_rate", Value: "10"}}}}})
	if err != nil || ar.Entries[0].ErrorCode != 0 {
		t.Fatalf("alter quotas: %v %+v", err, ar)
	}
	dq, err := c2.DescribeClientQuotas(ctx, &brokerop.DescribeClientQuotasReq{})
	if err != nil || len(dq.Entries) != 1 || dq.Entries[0].Values[0].Value != "10" {
		t.Fatalf("describe quotas via gateway 2: %v %+v", err, dq)
	}
}
