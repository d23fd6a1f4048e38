package endpoint

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/meshkafka/meshkafka/mesh/key"
)

// NodeAddr is what is known about how to reach a node.
type NodeAddr struct {
	ID       key.PublicKey
	RelayURL string           // "" if none
	Direct   []netip.AddrPort // direct UDP addresses
}

// ParseNodeAddr parses "<nodeid>" or "<nodeid>@host:port[,host:port...]".
// Hosts must be IP literals (IPv6 in brackets); no DNS is done.
func ParseNodeAddr(s string) (NodeAddr, error) {
	id, rest, hasAt := strings.Cut(strings.TrimSpace(s), "@")
	pk, err := key.ParsePublicKey(id)
	if err != nil {
		return NodeAddr{}, fmt.Errorf("endpoint: node addr: %w", err)
	}
	a := NodeAddr{ID: pk}
	if !hasAt {
		return a, nil
	}
	if rest == "" {
		return NodeAddr{}, errors.New("endpoint: node addr: empty address list after @")
	}
	for part := range strings.SplitSeq(rest, ",") {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(part))
		if err != nil {
			return NodeAddr{}, fmt.Errorf("endpoint: node addr: %w", err)
		}
		if ap.Port() == 0 {
			return NodeAddr{}, fmt.Errorf("endpoint: node addr: %s has port 0", ap)
		}
		a.Direct = append(a.Direct, ap)
	}
	return a, nil
}

// String formats a as ParseNodeAddr reads it (the relay URL is not part of
// the text form).
func (a NodeAddr) String() string {
	if len(a.Direct) == 0 {
		return a.ID.String()
	}
	parts := make([]string, len(a.Direct))
	for i, ap := range a.Direct {
		parts[i] = ap.String()
	}
	return a.ID.String() + "@" + strings.Join(parts, ",")
}

// merge adds b's addresses to a (same node), keeping order and no duplicates.
func (a NodeAddr) merge(b NodeAddr) NodeAddr {
	out := NodeAddr{ID: a.ID, RelayURL: a.RelayURL, Direct: slices.Clone(a.Direct)}
	if b.RelayURL != "" {
		out.RelayURL = b.RelayURL
	}
	for _, ap := range b.Direct {
		if !slices.Contains(out.Direct, ap) {
			out.Direct = append(out.Direct, ap)
		}
	}
	return out
}

// expandUnspecified lists the addresses a socket bound to the unspecified
// address local can be reached on: loopback first, then every unicast
// interface address of the socket's family (link-local ones are skipped:
// they need a zone to be useful).
func expandUnspecified(local netip.AddrPort, dualStack bool, ifaddrs []net.Addr) []netip.AddrPort {
	if !local.Addr().IsUnspecified() {
		return []netip.AddrPort{local}
	}
	v4 := local.Addr().Is4() || dualStack
	v6 := local.Addr().Is6()
	var out []netip.AddrPort
	add := func(ip netip.Addr) {
		ap := netip.AddrPortFrom(ip, local.Port())
		if !slices.Contains(out, ap) {
			out = append(out, ap)
		}
	}
	if v4 {
		add(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	}
	if v6 {
		add(netip.IPv6Loopback())
	}
	for _, ia := range ifaddrs {
		pfx, err := netip.ParsePrefix(ia.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr().Unmap()
		if ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
			continue
		}
		if (ip.Is4() && v4) || (ip.Is6() && v6) {
			add(ip)
		}
	}
	return out
}
