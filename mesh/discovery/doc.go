// Package discovery is the contract between node-address sources (mDNS on the LAN, later DNS
// or pkarr) and their users (the mesh endpoint, a gateway looking for brokers). It is a leaf:
// implementations such as mesh/discovery/mdns import it, and users import only it.
//
// A [Publisher] announces our own address; a [Resolver] finds a node's address by node id.
// Implementations that also learn about nodes nobody asked for offer [Watcher]; [Follow]
// turns a Watcher into a stream of new and changed nodes (a gateway joins each one it hears
// of on mDNS to the control topic that tells brokers from other nodes).
//
// # Logging and time
//
// Follow takes a Clock (package internal/clock; nil: the wall clock) for its polling interval.
package discovery
