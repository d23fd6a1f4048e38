//go:build !race

package magicsock_test

// transferSize is the NAT test's transfer: 64 MiB, as issue 8 asks.
const transferSize = 64 << 20
