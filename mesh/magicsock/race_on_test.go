//go:build race

package magicsock_test

// transferSize keeps the NAT test's transfer modest under the race detector.
const transferSize = 16 << 20
