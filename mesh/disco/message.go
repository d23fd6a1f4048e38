package disco

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"unicode/utf8"
)

// Wire constants.
const (
	// Magic opens every disco packet.
	Magic    = "TS\U0001F4AC"
	MagicLen = len(Magic)
	KeyLen   = 32
	TxIDLen  = 12
	NonceLen = 24
	TagLen   = 16
	// HeaderLen is magic plus sender key.
	HeaderLen = MagicLen + KeyLen
	// Overhead is what sealing adds to a plaintext.
	Overhead = TagLen + NonceLen

	v0        = 0
	epLen     = 16 + 2
	msgHdrLen = 2
)

// Message types.
const (
	TypePing        = 1
	TypePong        = 2
	TypeCallMeMaybe = 3
)

// Message is a Ping, Pong or CallMeMaybe.
type Message interface {
	// AppendTo appends the plaintext encoding (type, version, payload).
	AppendTo(b []byte) []byte
	isMessage()
}

// Ping probes a path. NodeKey is the sender's node id.
type Ping struct {
	TxID    [TxIDLen]byte
	NodeKey [KeyLen]byte
}

// Pong answers a Ping with the source the ping was seen from: a UDP address (Addr valid) or a
// relay URL (RelayURL non-empty).
type Pong struct {
	TxID     [TxIDLen]byte
	Addr     netip.AddrPort
	RelayURL string
}

// CallMeMaybe asks the receiver to ping the sender's direct addresses. iroh accepts it only
// over a relay.
type CallMeMaybe struct {
	Addrs []netip.AddrPort
}

func (*Ping) isMessage()        {}
func (*Pong) isMessage()        {}
func (*CallMeMaybe) isMessage() {}

// AppendTo implements Message.
func (m *Ping) AppendTo(b []byte) []byte {
	b = append(b, TypePing, v0)
	b = append(b, m.TxID[:]...)
	return append(b, m.NodeKey[:]...)
}

// AppendTo implements Message.
func (m *Pong) AppendTo(b []byte) []byte {
	b = append(b, TypePong, v0)
	b = append(b, m.TxID[:]...)
	if m.RelayURL != "" {
		b = append(b, 1)
		return append(b, m.RelayURL...)
	}
	b = append(b, 0)
	return appendAddr(b, m.Addr)
}

// AppendTo implements Message.
func (m *CallMeMaybe) AppendTo(b []byte) []byte {
	b = append(b, TypeCallMeMaybe, v0)
	for _, a := range m.Addrs {
		b = appendAddr(b, a)
	}
	return b
}

func appendAddr(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().As16() // IPv4 becomes ::ffff:a.b.c.d; the zero Addr becomes ::
	b = append(b, ip[:]...)
	return binary.LittleEndian.AppendUint16(b, a.Port())
}

func parseAddr(p []byte) netip.AddrPort {
	ip := netip.AddrFrom16([16]byte(p[:16])).Unmap()
	return netip.AddrPortFrom(ip, binary.LittleEndian.Uint16(p[16:18]))
}

// ErrMalformed wraps every message parse error.
var ErrMalformed = errors.New("disco: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ParseMessage decodes a plaintext message with iroh 0.28's rules: version must be 0; a Ping
// may carry extra trailing bytes; a Pong address is exactly 18 bytes or a parseable URL; a
// CallMeMaybe payload is a whole number of 18-byte entries.
func ParseMessage(p []byte) (Message, error) {
	if len(p) < msgHdrLen {
		return nil, malformed("%d bytes", len(p))
	}
	typ, ver, p := p[0], p[1], p[2:]
	if typ < TypePing || typ > TypeCallMeMaybe {
		return nil, malformed("unknown message type %d", typ)
	}
	if ver != v0 {
		return nil, malformed("version %d", ver)
	}
	switch typ {
	case TypePing:
		if len(p) < TxIDLen+KeyLen {
			return nil, malformed("ping of %d bytes", len(p))
		}
		m := &Ping{}
		copy(m.TxID[:], p)
		copy(m.NodeKey[:], p[TxIDLen:])
		return m, nil
	case TypePong:
		if len(p) < TxIDLen+3 {
			return nil, malformed("pong of %d bytes", len(p))
		}
		m := &Pong{}
		copy(m.TxID[:], p)
		a := p[TxIDLen:]
		switch a[0] {
		case 0:
			if len(a) != 1+epLen {
				return nil, malformed("pong udp address of %d bytes", len(a)-1)
			}
			m.Addr = parseAddr(a[1:])
		case 1:
			s := string(a[1:])
			if !utf8.ValidString(s) {
				return nil, malformed("pong relay url is not UTF-8")
			}
			u, err := url.Parse(s)
			if err != nil || u.Scheme == "" {
				return nil, malformed("pong relay url %q", s)
			}
			m.RelayURL = s
		default:
			return nil, malformed("pong address type %d", a[0])
		}
		return m, nil
	default: // TypeCallMeMaybe
		if len(p)%epLen != 0 {
			return nil, malformed("call-me-maybe payload of %d bytes", len(p))
		}
		m := &CallMeMaybe{Addrs: make([]netip.AddrPort, 0, len(p)/epLen)}
		for ; len(p) > 0; p = p[epLen:] {
			m.Addrs = append(m.Addrs, parseAddr(p))
		}
		return m, nil
	}
}
