package raftmesh

import (
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// BenchmarkMsgApp: MsgApp messages of one 1 KiB entry from one node to another over real
// loopback UDP, sent in batches of 64 with at most 8 batches in flight (so nothing is
// dropped). Reports messages/s; MB/s counts the entries' bytes.
func BenchmarkMsgApp(b *testing.B) {
	const batch, window = 64, 8
	newEP := func() *endpoint.Endpoint {
		ep, err := endpoint.New(endpoint.Options{SecretKey: key.GenerateSecretKey(), BindAddr: "127.0.0.1:0"})
		if err != nil {
			b.Fatal(err)
		}
		return ep
	}
	epA, epB := newEP(), newEP()
	var delivered atomic.Int64
	wake := make(chan struct{}, 1)
	trustAll := func(key.PublicKey) bool { return true }
	a := NewWithConfig(epA, Config{Trust: trustAll, Deliver: func(*raftpb.Message) {}, QueueLen: 4 * batch * window})
	bt := NewWithConfig(epB, Config{Trust: trustAll, Deliver: func(*raftpb.Message) {
		if delivered.Add(1)%batch == 0 {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}})
	b.Cleanup(func() {
		_ = a.Close()
		_ = bt.Close()
		_ = epA.Close()
		_ = epB.Close()
	})
	a.AddPeer(2, EncodeAddr(epB.Addr()))
	proto := msg(1, 2, 1, 1024)
	msgs := make([]*raftpb.Message, batch)
	b.SetBytes(batch * 1024)
	b.ResetTimer()
	var sent int64
	for b.Loop() {
		for sent-delivered.Load() >= batch*window {
			<-wake
		}
		for i := range msgs {
			msgs[i] = proto // the same message, never modified: marshalled afresh each time
		}
		a.Send(msgs)
		sent += batch
	}
	for delivered.Load() < sent {
		<-wake
	}
	b.StopTimer()
	if st := a.Stats(); st.Dropped != 0 {
		b.Fatalf("dropped %d", st.Dropped)
	}
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "msgs/s")
}
