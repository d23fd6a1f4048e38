package meshctl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"unicode/utf8"

	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/zeebo/blake3"

	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
)

// Role is what a node does in the mesh.
type Role uint8

// Roles.
const (
	RoleBroker  Role = 1
	RoleGateway Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleBroker:
		return "broker"
	case RoleGateway:
		return "gateway"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Limits of the digest format.
const (
	Version       = 1
	MaxMeshID     = 64
	MaxAddrs      = 16
	MaxDigestSize = 1 + 32 + 1 + 1 + MaxMeshID + 3*10 + 1 + MaxAddrs*(1+16+3) + 2*10 + 64
	sigContext    = "meshkafka/control/digest/v1"
)

// Digest is one node's announcement.
type Digest struct {
	Node       key.PublicKey
	Role       Role
	MeshID     string
	Seq        uint64 // strictly increasing per author
	TimeMs     uint64 // author's wall clock, unix ms (informational)
	Addrs      []netip.AddrPort
	Partitions uint64
	Bytes      uint64
}

// TopicFor returns the control topic of a mesh.
func TopicFor(meshID string) proto.TopicID {
	return proto.TopicID(blake3.Sum256([]byte("meshkafka/control/v1/" + meshID)))
}

// Errors.
var (
	ErrMalformed = errors.New("meshctl: malformed digest")
	ErrSignature = errors.New("meshctl: bad digest signature")
)

// Encode serialises d and signs it with sk, which must be d.Node's key.
func Encode(d Digest, sk key.SecretKey) ([]byte, error) {
	if sk.Public() != d.Node {
		return nil, errors.New("meshctl: signing key does not match the digest's node id")
	}
	if d.Role != RoleBroker && d.Role != RoleGateway {
		return nil, fmt.Errorf("meshctl: unknown role %d", d.Role)
	}
	if len(d.MeshID) > MaxMeshID || !utf8.ValidString(d.MeshID) {
		return nil, fmt.Errorf("meshctl: mesh id must be valid utf-8 of at most %d bytes", MaxMeshID)
	}
	if len(d.Addrs) > MaxAddrs {
		return nil, fmt.Errorf("meshctl: at most %d addresses", MaxAddrs)
	}
	b := make([]byte, 0, 192)
	b = append(b, Version)
	id := d.Node.Bytes()
	b = append(b, id[:]...)
	b = append(b, byte(d.Role))
	b = binary.AppendUvarint(b, uint64(len(d.MeshID)))
	b = append(b, d.MeshID...)
	b = binary.AppendUvarint(b, d.Seq)
	b = binary.AppendUvarint(b, d.TimeMs)
	b = binary.AppendUvarint(b, uint64(len(d.Addrs)))
	for _, ap := range d.Addrs {
		if !ap.IsValid() || ap.Port() == 0 {
			return nil, fmt.Errorf("meshctl: bad address %v", ap)
		}
		a := ap.Addr().Unmap()
		if a.Is4() {
			b = append(b, 4)
			v := a.As4()
			b = append(b, v[:]...)
		} else {
			b = append(b, 6)
			v := a.As16()
			b = append(b, v[:]...)
		}
		b = binary.AppendUvarint(b, uint64(ap.Port()))
	}
	b = binary.AppendUvarint(b, d.Partitions)
	b = binary.AppendUvarint(b, d.Bytes)
	sig := sk.Sign(append([]byte(sigContext), b...))
	return append(b, sig...), nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail(what + ": short")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8(what string) byte {
	v := r.bytes(1, what)
	if v == nil {
		return 0
	}
	return v[0]
}

// uvarint reads a canonical LEB128 u64.
func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what + ": bad varint")
		return 0
	}
	if n > 1 && r.b[n-1] == 0 {
		r.fail(what + ": overlong varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Decode parses and verifies a digest.
func Decode(b []byte) (Digest, error) {
	var d Digest
	if len(b) > MaxDigestSize {
		return d, fmt.Errorf("%w: %d bytes > %d", ErrMalformed, len(b), MaxDigestSize)
	}
	if len(b) < 64 {
		return d, fmt.Errorf("%w: short", ErrMalformed)
	}
	body, sig := b[:len(b)-64], b[len(b)-64:]
	r := &reader{b: body}
	if v := r.u8("version"); r.err == nil && v != Version {
		return d, fmt.Errorf("%w: version %d", ErrMalformed, v)
	}
	id := r.bytes(32, "node id")
	d.Role = Role(r.u8("role"))
	if r.err == nil && d.Role != RoleBroker && d.Role != RoleGateway {
		r.fail(fmt.Sprintf("role %d", d.Role))
	}
	if n := r.uvarint("mesh id length"); n > MaxMeshID {
		r.fail("mesh id too long")
	} else if s := r.bytes(int(n), "mesh id"); r.err == nil {
		if !utf8.Valid(s) {
			r.fail("mesh id not utf-8")
		}
		d.MeshID = string(s)
	}
	d.Seq = r.uvarint("seq")
	d.TimeMs = r.uvarint("time")
	n := r.uvarint("address count")
	if n > MaxAddrs {
		r.fail("too many addresses")
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		var a netip.Addr
		switch fam := r.u8("address family"); fam {
		case 4:
			v := r.bytes(4, "ipv4")
			if r.err == nil {
				a = netip.AddrFrom4([4]byte(v))
			}
		case 6:
			v := r.bytes(16, "ipv6")
			if r.err == nil {
				a = netip.AddrFrom16([16]byte(v))
			}
		default:
			r.fail(fmt.Sprintf("address family %d", fam))
		}
		p := r.uvarint("port")
		if r.err == nil && (p == 0 || p > 65535) {
			r.fail("port out of range")
		}
		if r.err == nil {
			d.Addrs = append(d.Addrs, netip.AddrPortFrom(a, uint16(p)))
		}
	}
	d.Partitions = r.uvarint("partitions")
	d.Bytes = r.uvarint("bytes")
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return Digest{}, r.err
	}
	pk, err := key.PublicKeyFromBytes(id)
	if err != nil {
		return Digest{}, fmt.Errorf("%w: node id: %v", ErrMalformed, err)
	}
	d.Node = pk
	if !pk.Verify(append([]byte(sigContext), body...), sig) {
		return Digest{}, ErrSignature
	}
	return d, nil
}
