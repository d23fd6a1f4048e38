// Package natlab is an in-memory UDP internet for tests: machines with addresses, NATs in
// front of private networks, stateful firewalls, packet loss and drop rules, and
// net.PacketConn sockets on the machines that the code under test (a magicsock, a STUN
// server, a quic-go transport) uses as if they were real. Tailscale's tstest/natlab is the
// model; this one is smaller and routes synchronously.
//
// # Topology
//
//	net := natlab.New(natlab.Config{Seed: 1})
//	defer net.Close()
//	stun := net.AddMachine("stun", netip.MustParseAddr("192.0.2.10"))   // on the internet
//	home := net.AddNAT("home", netip.MustParseAddr("203.0.113.1"), natlab.NATConfig{
//		Mapping:   natlab.EndpointIndependent,
//		Filtering: natlab.AddressAndPortDependent, // a port-restricted cone NAT
//	})
//	laptop := home.AddMachine("laptop", netip.MustParseAddr("10.0.0.2")) // behind it
//	pc, _ := laptop.ListenPacket(41641)
//
// A machine added to the Network has a public address; a machine added to a NAT has a
// private one, reachable directly only from the NAT's other machines (its LAN). Everything
// a LAN machine sends elsewhere leaves through the NAT, which gives the private ip:port a
// public port on its public address:
//
//   - Mapping EndpointIndependent: one public port per private ip:port, whatever the
//     destination (what STUN reports is what peers see). EndpointDependent (a "symmetric"
//     NAT): a new public port per destination ip:port.
//   - Filtering decides which inbound packets to a public port pass: EndpointIndependent
//     (any, a "full cone"), AddressDependent (only from an IP the mapping has sent to),
//     AddressAndPortDependent (only from an ip:port it has sent to).
//   - PreservePort: a new mapping takes the private port as its public port when free;
//     otherwise ports are handed out from 49152 up, never twice in the NAT's life.
//   - NAT.SetDown drops everything through the NAT; NAT.Reboot forgets every mapping (and
//     so every hole). Packets from a LAN to the NAT's own public address are dropped (no
//     hairpinning).
//
// Machine.SetFirewall puts a stateful firewall with the given Filtering in front of a
// machine: inbound packets pass only as return traffic of what its socket sent.
//
// # Delivery
//
// A WriteTo is routed at once, under the Network's lock: source NAT, then loss and the drop
// rule (Config.Loss with the seeded random source, Network.SetDrop; they see the packet as
// it travels between the two sides, after source translation), then the destination's NAT
// or firewall, then the socket's queue (Config.QueueLen datagrams; a full queue drops, like
// a real socket buffer). Packets are never reordered or delayed. Nothing leaves the process.
// There are no goroutines: a socket's reader blocks on a channel, which also makes natlab
// usable inside testing/synctest bubbles. Stats counts what was delivered and what was
// dropped where.
//
// Sockets implement net.PacketConn with *net.UDPAddr addresses; read deadlines work, write
// deadlines are ignored (writes never block). Network.Close closes every socket.
package natlab
