package proto

import (
	"errors"
	"net/netip"
	"slices"
	"unicode/utf8"
)

// AddrInfo is what the iroh-gossip net layer puts inside PeerData:
// postcard(AddrInfo{relay_url: Option<String>, direct_addresses: BTreeSet<SocketAddr>}).
// RelayURL "" means None. Addresses are encoded sorted as Rust's BTreeSet
// orders them (V4 before V6, then ip, then port), without zones.
type AddrInfo struct {
	RelayURL string
	Direct   []netip.AddrPort
}

// ErrBadAddrInfo reports PeerData that is not a postcard AddrInfo. Rust only
// logs this; it does not end the connection.
var ErrBadAddrInfo = errors.New("gossip: bad AddrInfo in peer data")

func cmpAddrPort(a, b netip.AddrPort) int {
	a4, b4 := a.Addr().Unmap().Is4(), b.Addr().Unmap().Is4()
	if a4 != b4 {
		if a4 {
			return -1
		}
		return 1
	}
	if c := a.Addr().Unmap().Compare(b.Addr().Unmap()); c != 0 {
		return c
	}
	return int(a.Port()) - int(b.Port())
}

// EncodePeerData encodes a as PeerData. Duplicate addresses are collapsed
// (it is a set in Rust) and IPv4-mapped IPv6 addresses are written as V4.
func EncodePeerData(a AddrInfo) PeerData {
	b := []byte{}
	if a.RelayURL == "" {
		b = append(b, 0)
	} else {
		b = appendBytes(append(b, 1), []byte(a.RelayURL))
	}
	addrs := make([]netip.AddrPort, 0, len(a.Direct))
	for _, ap := range a.Direct {
		if ap.IsValid() {
			addrs = append(addrs, netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()))
		}
	}
	slices.SortFunc(addrs, cmpAddrPort)
	addrs = slices.Compact(addrs)
	b = appendVarint(b, uint64(len(addrs)))
	for _, ap := range addrs {
		if ip := ap.Addr(); ip.Is4() {
			a4 := ip.As4()
			b = append(append(b, 0), a4[:]...)
		} else {
			a16 := ip.As16()
			b = append(append(b, 1), a16[:]...)
		}
		b = appendVarint(b, uint64(ap.Port()))
	}
	return b
}

// DecodePeerData parses PeerData as AddrInfo. Empty data means "no
// addresses", as in Rust.
func DecodePeerData(d PeerData) (AddrInfo, error) {
	var a AddrInfo
	if len(d) == 0 {
		return a, nil
	}
	r := newReader(d)
	some, err := r.Option()
	if err != nil {
		return a, errors.Join(ErrBadAddrInfo, err)
	}
	if some {
		u, err := r.bytes()
		if err != nil || !utf8.Valid(u) {
			return a, errors.Join(ErrBadAddrInfo, err)
		}
		a.RelayURL = string(u)
	}
	n, err := r.Len()
	if err != nil {
		return a, errors.Join(ErrBadAddrInfo, err)
	}
	for range n {
		t, err := r.U32()
		if err != nil {
			return a, errors.Join(ErrBadAddrInfo, err)
		}
		var ip netip.Addr
		switch t {
		case 0:
			p, err := r.Take(4)
			if err != nil {
				return a, errors.Join(ErrBadAddrInfo, err)
			}
			ip = netip.AddrFrom4([4]byte(p))
		case 1:
			p, err := r.Take(16)
			if err != nil {
				return a, errors.Join(ErrBadAddrInfo, err)
			}
			ip = netip.AddrFrom16([16]byte(p))
		default:
			return a, errors.Join(ErrBadAddrInfo, ErrBadTag)
		}
		port, err := r.U16()
		if err != nil {
			return a, errors.Join(ErrBadAddrInfo, err)
		}
		a.Direct = append(a.Direct, netip.AddrPortFrom(ip, port))
	}
	return a, nil
}
