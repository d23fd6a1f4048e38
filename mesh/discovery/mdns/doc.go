// Package mdns is LAN discovery in the layout of iroh 0.28.1's LocalSwarmDiscovery
// (swarm-discovery 0.2.1), so Go and Rust nodes on one link find each other with no
// configuration. It implements discovery.Publisher, discovery.Resolver and discovery.Watcher.
//
// # Wire layout
//
// Service name _iroh.local.swarm._udp.local.; a node's peer id is its node id in iroh's text
// form (base32, lowercase, 52 characters).
//
//	query     id 0, no flags, one question: _iroh.local.swarm._udp.local. PTR IN
//	response  id 0, QR and AA set, no questions
//	          answers:     one SRV per port, owner <id>._iroh.local.swarm._udp.local., TTL 0,
//	                       class IN (no cache-flush bit), priority 0, weight 0,
//	                       target <id>-<port>.local.
//	          additionals: A / AAAA for each target, owner = the target, TTL 0
//
// A receiver takes SRV records only from the answer section and A/AAAA only from the
// additional section (owner directly under local. and equal to an SRV target), as
// swarm-discovery does; TTLs are ignored (iroh always sends 0). Every message with a matching
// PTR question is a query and is answered (when we have published addresses); we also
// announce unsolicited every Interval, since iroh forgets peers it has not heard from for
// about 2 s. Our own announcements loop back and are ignored. No relay URL is advertised.
//
// # Why not zeroconf
//
// github.com/grandcat/zeroconf v1.0.0 (which is built on miekg/dns) can produce neither side
// of this layout: its server answers a PTR query with a PTR answer and puts SRV/TXT in the
// additional section (swarm-discovery ignores SRV there), puts A/AAAA in the answer section
// of announcements (ignored too), sets the cache-flush bit (class ≠ IN), uses TTL 120/3200
// and one port per instance; its browser drops every record with TTL 0 as a goodbye, which
// is every record iroh sends. Neither takes an injected socket. So both directions are built
// directly on miekg/dns here.
//
// # Sockets
//
// By default the service binds UDP 0.0.0.0:5353 with SO_REUSEADDR and SO_REUSEPORT, joins
// 224.0.0.251 with multicast loopback on and TTL 16 (as swarm-discovery does), and does the
// same for [::]:5353 / ff02::fb when IPv6 is available; either may fail, not both. Tests
// inject their own PacketConns ([Config.Conns]).
//
// # Logging and time
//
// Config.Logger receives diagnostics (nil: discard). Config.Clock (package internal/clock; nil:
// the wall clock) drives announcements, queries and expiry.
package mdns
