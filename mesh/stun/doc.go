// Package stun answers and sends the STUN Binding requests iroh 0.28.1 uses to learn a node's
// reflexive (public) address, on top of github.com/pion/stun/v2.
//
// iroh's netcheck sends a Binding request with FINGERPRINT to <relay host>:3478 from its own
// UDP sockets and reads XOR-MAPPED-ADDRESS (MAPPED-ADDRESS as a fallback) from the success
// response. [Server] answers such requests with both attributes and a FINGERPRINT; [Request]
// and [ParseResponse] are the client side; [Is] is iroh's cheap demux test (the top two bits
// of byte 0 are zero and bytes 4..8 are the magic cookie 0x2112A442).
//
// # Logging and time
//
// NewServer takes its logger as an argument (nil: discard). Probe's read deadline is a socket
// deadline and so uses the wall clock.
package stun
