// Package interop holds the tests that run our Go implementation against real Rust iroh 0.28.1
// nodes (npm @number0/iroh@0.28.1, driven through package interop/irohnode) and against real
// Kafka clients (interop/kafka). The package has no code of its own: everything is in _test.go
// files.
//
// Run the Rust suite only inside a private network namespace with only loopback up
// (`go tool task interop` does: npm ci and go test -c outside, the test binary inside
// `unshare -n`). Outside such a namespace every test that needs a Rust node skips with the
// reason (the few that need none, such as the offline golden check, still run), unless
// INTEROP_REQUIRED=1, which turns the skips into failures.
//
// Test families: rust_test.go (Rust↔Rust through the driver: streams, gossip),
// endpoint_test.go (Go mesh/endpoint ↔ Rust, both directions, bi/uni, 64 MiB, 100 streams,
// refusals both ways, and bad certificates against our endpoint), refusal_test.go and
// rawtls_test.go (a bare quic-go/crypto/tls peer: each certificate defect and the TLS alert the
// Rust node answers with), rawstreams_test.go (the Go half of the stream modes, gostreams_test.go,
// over bare quic-go), golden_test.go (the Rust node's TLS certificate in testdata/),
// bench_test.go and bench_endpoint_test.go (QUIC throughput Go↔Go, Rust↔Rust, Go↔Rust).
// Other helpers add gossip*, relay* and mdns* tests on the same harness.
package interop
