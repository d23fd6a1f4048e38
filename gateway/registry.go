package gateway

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/kafkawire"
)

// Handler answers one decoded request. See the package doc for the contract.
type Handler func(ctx context.Context, r *Request) (kmsg.Response, error)

// Stager is the two-step form of a Handler, for APIs whose answer waits on something
// slow that can overlap with the next request (Produce waiting for fsync). The stage step
// runs on the connection's reader in request order; the returned finish function runs on
// the connection's writer, in the same order, and returns what a Handler would.
type Stager func(ctx context.Context, r *Request) (finish func() (kmsg.Response, error), err error)

// API is one Kafka API the gateway serves, with the version range it advertises. Exactly
// one of Handle and Stage is set.
type API struct {
	Key        int16
	MinVersion int16
	MaxVersion int16
	Handle     Handler
	Stage      Stager
}

// Request is one decoded request handed to a Handler.
type Request struct {
	Header kafkawire.RequestHeader
	Body   kmsg.Request
	Server *Server

	conn *connState // the connection's security state (nil in tests that build a Request)
	// finishReady: the Stage function's finish step returns at once (stageProduce sets it),
	// so the reader may run it when nothing is queued (serve).
	finishReady bool
}

// Principal is the Kafka principal of the request's connection: "User:<name>" after SASL,
// "User:<certificate subject>" for a client certificate on an SSL listener, otherwise
// "User:ANONYMOUS".
func (r *Request) Principal() string {
	if r.conn == nil {
		return AnonymousPrincipal
	}
	return r.conn.principal
}

// Advertised is the host and port clients must dial to stay on the listener this request
// came in on.
func (r *Request) Advertised() (host string, port int32) {
	host, port = r.Server.Advertised()
	if r.conn != nil && r.conn.lis.port != 0 {
		port = r.conn.lis.port
	}
	if r.conn != nil && r.conn.lis.host != "" {
		host = r.conn.lis.host
	}
	return host, port
}

var (
	registryMu sync.RWMutex
	registry   = map[int16]API{} // guarded by registryMu
)

// Register adds an API to the dispatch table. It is meant for init functions; it panics on
// a duplicate key, an invalid range, or a range beyond what kmsg can decode.
func Register(a API) {
	req := kmsg.RequestForKey(a.Key)
	if req == nil || (a.Handle == nil) == (a.Stage == nil) || a.MinVersion < 0 || a.MinVersion > a.MaxVersion || a.MaxVersion > req.MaxVersion() {
		panic(fmt.Sprintf("gateway: invalid API registration key %d v%d-%d", a.Key, a.MinVersion, a.MaxVersion))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[a.Key]; dup {
		panic(fmt.Sprintf("gateway: API key %d registered twice", a.Key))
	}
	registry[a.Key] = a
}

// lookupAPI returns the registered API for key.
func lookupAPI(key int16) (API, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	a, ok := registry[key]
	return a, ok
}

// APIs returns the registered APIs' version ranges sorted by key (what ApiVersions
// advertises).
func APIs() []kafkawire.VersionRange {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]kafkawire.VersionRange, 0, len(registry))
	for _, a := range registry {
		out = append(out, kafkawire.VersionRange{Key: a.Key, Min: a.MinVersion, Max: a.MaxVersion})
	}
	slices.SortFunc(out, func(a, b kafkawire.VersionRange) int { return int(a.Key) - int(b.Key) })
	return out
}
