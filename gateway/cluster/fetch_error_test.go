package cluster

import (
	"context"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// A fetch that fails (here: its context is already cancelled) returns the error; it used to
// panic, calling the nil release func its error return had just set.
func TestFetchErrorReturnsError(t *testing.T) {
	gw := newEP(t)
	c := clusterFor(t, gw, startBrokers(t, 2, gw)) // several owners: the split path
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp, release, err := c.FetchPooled(ctx, &brokerop.FetchReq{MaxBytes: 1 << 20, MaxWaitMs: 100,
		Partitions: []brokerop.FetchPartition{{Topic: "absent", Offset: 0, MaxBytes: 1 << 20}}})
	if err == nil {
		release()
		t.Fatalf("fetch with a cancelled context: %+v, no error", resp)
	}
}
