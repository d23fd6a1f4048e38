package meshtest

import (
	"context"
	"crypto/ed25519"
	"net"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/mesh/relay"
	"github.com/meshkafka/meshkafka/mesh/relay/relayserver"
)

// MemRelayURL is a relay URL for StartMemRelay's dialer; it names no host and is never
// resolved.
const MemRelayURL = "http://relay.meshtest.invalid"

// StartMemRelay runs an in-process relay server reached over in-memory pipes instead of
// TCP, stopped at test cleanup (which closes every connection and waits for every goroutine
// it started). It returns the server and a dialer for magicsock.Options.DialRelay, which
// connects whatever URL it is given to this server. Nothing touches a socket, so it works
// inside testing/synctest bubbles (with natlab for the UDP side).
func StartMemRelay(tb testing.TB) (*relayserver.Server, func(ctx context.Context, url string, priv ed25519.PrivateKey) (*relay.Client, error)) {
	tb.Helper()
	srv := relayserver.New(relayserver.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		closed bool // guarded by mu; no wg.Go once set
	)
	tb.Cleanup(func() {
		mu.Lock()
		closed = true
		mu.Unlock()
		cancel()
		_ = srv.Close()
		wg.Wait()
	})
	dial := func(dctx context.Context, _ string, priv ed25519.PrivateKey) (*relay.Client, error) {
		if err := dctx.Err(); err != nil {
			return nil, err
		}
		cc, sc := net.Pipe()
		mu.Lock()
		if closed {
			mu.Unlock()
			return nil, net.ErrClosed
		}
		wg.Go(func() { _ = srv.Accept(ctx, sc, nil) })
		mu.Unlock()
		cl, err := relay.NewClient(priv, cc, nil)
		if err != nil {
			_ = cc.Close()
			return nil, err
		}
		return cl, nil
	}
	return srv, dial
}
