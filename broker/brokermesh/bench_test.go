package brokermesh

// BenchmarkCall: what one KafkaOp costs the carrier, gateway and broker side together, over
// two real mesh endpoints on loopback in this process (a Caller through a MeshOpener, a
// Server through Serve). The service answers at once (fakeBroker), so what is measured is
// the hop: frames, the stream per op, QUIC packets and the goroutines on both ends. It also reports the datagrams each end sent per op
// (gw-, br-pkts/op) and the send and receive syscalls of both (sends/op, recvs/op).
//
// conc is the number of calls in flight (conc=1: one op at a time, every op its own
// packets; conc=16: ops share packets and wakeups). Besides ns/op it reports cpu-ns/op, the
// process's CPU time (both ends) per op, which is the steadier figure on a shared machine.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func BenchmarkCall(b *testing.B) {
	newEP := func(b *testing.B) *endpoint.Endpoint {
		ep, err := endpoint.New(endpoint.Options{SecretKey: key.GenerateSecretKey(), BindAddr: "127.0.0.1:0"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ep.Close() })
		return ep
	}
	records := make([]byte, 1000) // about ten 100-byte records: a small acks=all produce
	for _, op := range []string{"produce", "fetch"} {
		for _, conc := range []int{1, 16} {
			b.Run(fmt.Sprintf("op=%s/conc=%d", op, conc), func(b *testing.B) {
				brokerEP, gwEP := newEP(b), newEP(b)
				var trust TrustList
				trust.Add(gwEP.NodeID())
				fb := &benchBroker{}
				Serve(brokerEP, NewServer(nil, brokerop.Parts{Data: fb}), trust, nil)
				c := NewCaller(NewMeshOpener(gwEP, brokerEP.Addr()), "broker")
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				call := func() error {
					switch op {
					case "produce":
						_, err := c.Produce(ctx, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{{Topic: "t", Partition: 1, Records: records}}})
						return err
					default:
						resp, release, err := c.FetchPooled(ctx, &brokerop.FetchReq{MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{{Topic: "t", Partition: 1, MaxBytes: 1 << 20}}})
						if err == nil && len(resp.Partitions) != 1 {
							err = fmt.Errorf("fetch answer has %d partitions", len(resp.Partitions))
						}
						if release != nil {
							release()
						}
						return err
					}
				}
				if err := call(); err != nil { // dial and warm up outside the timing
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := processCPU()
				gw0, br0 := gwEP.SocketStats(), brokerEP.SocketStats()
				var wg sync.WaitGroup
				var mu sync.Mutex
				var first error
				next := make(chan struct{}, conc)
				for range conc {
					wg.Go(func() {
						for range next {
							if err := call(); err != nil {
								mu.Lock()
								first = cmp(first, err)
								mu.Unlock()
							}
						}
					})
				}
				for range b.N {
					next <- struct{}{}
				}
				close(next)
				wg.Wait()
				cpu := processCPU() - cpu0
				b.StopTimer()
				if first != nil {
					b.Fatal(first)
				}
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
				gw, br := gwEP.SocketStats(), brokerEP.SocketStats()
				n := float64(b.N)
				b.ReportMetric(float64(gw.TxPackets-gw0.TxPackets)/n, "gw-pkts/op")
				b.ReportMetric(float64(br.TxPackets-br0.TxPackets)/n, "br-pkts/op")
				b.ReportMetric(float64(gw.TxSmall-gw0.TxSmall)/n, "gw-small/op")
				b.ReportMetric(float64(br.TxSmall-br0.TxSmall)/n, "br-small/op")
				b.ReportMetric(float64(gw.TxWrites-gw0.TxWrites+br.TxWrites-br0.TxWrites)/n, "sends/op")
				b.ReportMetric(float64(gw.RxReads-gw0.RxReads+br.RxReads-br0.RxReads)/n, "recvs/op")
			})
		}
	}
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// benchBroker answers a produce with one offset (nullProduce) and a fetch with 1000 record
// bytes.
type benchBroker struct {
	nullProduce
	fetched [1000]byte
}

func (f *benchBroker) Fetch(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error) {
	return &brokerop.FetchResp{Partitions: []brokerop.FetchPartitionResp{{Topic: "t", Partition: 1, Records: f.fetched[:]}}}, nil
}

func (f *benchBroker) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	return brokerop.FetchUnpooled(ctx, f.Fetch, req)
}
