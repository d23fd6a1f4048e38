package ticket

import (
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Kind is the prefix of a node ticket's text form.
const Kind = "node"

// maxLen bounds a ticket's text: a relay URL and a few dozen addresses fit many times over.
const maxLen = 8 << 10

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrNotTicket is returned by Parse for text that is not a node ticket.
var ErrNotTicket = errors.New("ticket: not a node ticket")

// Encode returns a's node ticket.
func Encode(a endpoint.NodeAddr) string {
	return Kind + strings.ToLower(b32.EncodeToString(Bytes(a)))
}

// Bytes returns the postcard bytes of a's ticket (what the base32 text carries).
func Bytes(a endpoint.NodeAddr) []byte {
	id := a.ID.Bytes()
	b := append([]byte{0}, id[:]...)
	return append(b, proto.EncodePeerData(proto.AddrInfo{RelayURL: a.RelayURL, Direct: a.Direct})...)
}

// IsTicket reports whether s looks like a node ticket (and not a bare NodeId, whose base32
// text is 52 characters).
func IsTicket(s string) bool {
	s = strings.TrimSpace(s)
	return len(s) > len(Kind)+52 && strings.EqualFold(s[:len(Kind)], Kind) && !strings.Contains(s, "@")
}

// Parse reads a node ticket.
func Parse(s string) (endpoint.NodeAddr, error) {
	s = strings.TrimSpace(s)
	if !IsTicket(s) {
		return endpoint.NodeAddr{}, ErrNotTicket
	}
	if len(s) > maxLen {
		return endpoint.NodeAddr{}, fmt.Errorf("ticket: %d characters, more than %d", len(s), maxLen)
	}
	text := strings.ToUpper(s[len(Kind):])
	raw, err := b32.DecodeString(text)
	if err != nil {
		return endpoint.NodeAddr{}, fmt.Errorf("ticket: base32: %w", err)
	}
	if b32.EncodeToString(raw) != text {
		// Non-zero unused bits in the last character: Rust's decoder refuses those too.
		return endpoint.NodeAddr{}, errors.New("ticket: base32: non-canonical trailing bits")
	}
	return FromBytes(raw)
}

// FromBytes reads a ticket's postcard bytes.
func FromBytes(raw []byte) (endpoint.NodeAddr, error) {
	if len(raw) < 1+key.Size || raw[0] != 0 {
		return endpoint.NodeAddr{}, errors.New("ticket: not a version 0 node ticket")
	}
	id, err := key.PublicKeyFromBytes(raw[1 : 1+key.Size])
	if err != nil {
		return endpoint.NodeAddr{}, fmt.Errorf("ticket: %w", err)
	}
	rest := raw[1+key.Size:]
	if len(rest) == 0 {
		return endpoint.NodeAddr{}, errors.New("ticket: truncated after the node id")
	}
	info, err := proto.DecodePeerData(rest)
	if err != nil {
		return endpoint.NodeAddr{}, fmt.Errorf("ticket: %w", err)
	}
	a := endpoint.NodeAddr{ID: id, RelayURL: info.RelayURL, Direct: info.Direct}
	if re := Bytes(a); string(re) != string(raw) {
		return endpoint.NodeAddr{}, errors.New("ticket: not in canonical form (trailing bytes, unsorted or repeated addresses)")
	}
	for _, ap := range a.Direct {
		if ap.Port() == 0 {
			return endpoint.NodeAddr{}, fmt.Errorf("ticket: address %s has port 0", ap)
		}
	}
	return a, nil
}

// ParseAddr reads a node address in any form this project accepts: a node ticket,
// "<nodeid>@host:port[,host:port...]" or a bare NodeId.
func ParseAddr(s string) (endpoint.NodeAddr, error) {
	if IsTicket(s) {
		return Parse(s)
	}
	return endpoint.ParseNodeAddr(s)
}
