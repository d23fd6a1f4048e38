package mdns

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// ServiceName is the DNS-SD service iroh 0.28's local discovery uses.
const ServiceName = "_iroh.local.swarm._udp.local."

// BuildQuery returns the query swarm-discovery sends: id 0, no flags, one PTR IN question.
func BuildQuery() []byte {
	m := &dns.Msg{}
	m.Question = []dns.Question{{Name: ServiceName, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
	b, err := m.Pack()
	if err != nil {
		panic(err) // a constant message
	}
	return b
}

// BuildResponse returns the announcement of peerID with addrs: one SRV per distinct port
// (in port order) and an A or AAAA additional for each address on that port.
func BuildResponse(peerID string, addrs []netip.AddrPort) ([]byte, error) {
	if _, ok := dns.IsDomainName(peerID + ".local."); !ok || strings.Contains(peerID, ".") {
		return nil, fmt.Errorf("mdns: %q is not a valid peer id label", peerID)
	}
	m := &dns.Msg{}
	m.Response = true
	m.Authoritative = true
	owner := peerID + "." + ServiceName
	byPort := map[uint16][]netip.Addr{}
	for _, a := range addrs {
		if !a.IsValid() || a.Port() == 0 {
			continue
		}
		ip := a.Addr().Unmap()
		if !slices.Contains(byPort[a.Port()], ip) {
			byPort[a.Port()] = append(byPort[a.Port()], ip)
		}
	}
	ports := make([]uint16, 0, len(byPort))
	for p := range byPort {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	for _, port := range ports {
		target := peerID + "-" + strconv.Itoa(int(port)) + ".local."
		m.Answer = append(m.Answer, &dns.SRV{
			Hdr:    dns.RR_Header{Name: owner, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 0},
			Port:   port,
			Target: target,
		})
		for _, ip := range byPort[port] {
			if ip.Is4() {
				m.Extra = append(m.Extra, &dns.A{
					Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
					A:   net.IP(ip.AsSlice()),
				})
			} else {
				m.Extra = append(m.Extra, &dns.AAAA{
					Hdr:  dns.RR_Header{Name: target, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 0},
					AAAA: net.IP(ip.AsSlice()),
				})
			}
		}
	}
	return m.Pack()
}

// Parsed is what one mDNS message says about the iroh swarm.
type Parsed struct {
	// Query is true when the message asks for the service (a PTR IN question for it).
	Query bool
	// Peers maps each announced peer id (as sent, lowercased) to its addresses.
	Peers map[string][]netip.AddrPort
}

// ParseMessage interprets a DNS message with swarm-discovery 0.2.1's rules.
func ParseMessage(b []byte) (Parsed, error) {
	var p Parsed
	m := &dns.Msg{}
	if err := m.Unpack(b); err != nil {
		return p, fmt.Errorf("mdns: %w", err)
	}
	for _, q := range m.Question {
		if q.Qclass == dns.ClassINET && q.Qtype == dns.TypePTR && strings.EqualFold(q.Name, ServiceName) {
			p.Query = true
			return p, nil // swarm-discovery looks no further in a query
		}
	}
	type portPeer struct {
		port uint16
		peer string
	}
	targets := map[string][]portPeer{}
	for _, rr := range m.Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok || srv.Hdr.Class != dns.ClassINET {
			continue
		}
		label, rest, ok := splitFirst(srv.Hdr.Name)
		if !ok || !strings.EqualFold(rest, ServiceName) {
			continue
		}
		t := strings.ToLower(srv.Target)
		targets[t] = append(targets[t], portPeer{srv.Port, strings.ToLower(label)})
	}
	for _, rr := range m.Extra {
		var ip netip.Addr
		switch a := rr.(type) {
		case *dns.A:
			if a.Hdr.Class != dns.ClassINET {
				continue
			}
			ip, _ = netip.AddrFromSlice(a.A.To4())
		case *dns.AAAA:
			if a.Hdr.Class != dns.ClassINET {
				continue
			}
			ip, _ = netip.AddrFromSlice(a.AAAA.To16())
		default:
			continue
		}
		if !ip.IsValid() {
			continue
		}
		name := rr.Header().Name
		if _, rest, ok := splitFirst(name); !ok || !strings.EqualFold(rest, "local.") {
			continue
		}
		for _, pp := range targets[strings.ToLower(name)] {
			if p.Peers == nil {
				p.Peers = map[string][]netip.AddrPort{}
			}
			ap := netip.AddrPortFrom(ip, pp.port)
			if !slices.Contains(p.Peers[pp.peer], ap) {
				p.Peers[pp.peer] = append(p.Peers[pp.peer], ap)
			}
		}
	}
	return p, nil
}

// splitFirst splits a fully qualified name into its first label and the rest.
func splitFirst(name string) (label, rest string, ok bool) {
	idx := dns.Split(name)
	if len(idx) < 2 {
		return "", "", false
	}
	return name[:idx[1]-1], name[idx[1]:], true
}
