// Command kfakeserver runs franz-go's kfake (an in-memory fake Kafka broker) as its own
// process, so benchmarks can drive it and the gateway the same way: each server in its own
// process, the client in the benchmark process. It lives under interop because kfake is
// test-only code everywhere else.
//
//	kfakeserver -partitions 8 -topic bench
//
// It prints "kfake listening on ADDR" and serves until SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	partitions := flag.Int("partitions", 1, "partitions of the seeded topic")
	topic := flag.String("topic", "bench", "topic to seed")
	flag.Parse()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(*partitions), *topic),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfakeserver:", err)
		os.Exit(1)
	}
	fmt.Printf("kfake listening on %s\n", c.ListenAddrs()[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	c.Close()
}
