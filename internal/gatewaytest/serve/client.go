package serve

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Client is a kgo client of the gateway at addr with opts, closed when the test ends.
func Client(tb testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}
