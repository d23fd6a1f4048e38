package gateway

import (
	"fmt"
	"net"
	"strings"
)

// SecurityProtocol is a Kafka listener's security protocol (Kafka's security.protocol).
type SecurityProtocol int8

// Kafka's security protocols.
const (
	Plaintext     SecurityProtocol = iota // PLAINTEXT: no TLS, no authentication
	SSL                                   // SSL: TLS, optional client certificates (mTLS)
	SASLPlaintext                         // SASL_PLAINTEXT: SASL authentication without TLS
	SASLSSL                               // SASL_SSL: SASL authentication over TLS
)

var protocolNames = [...]string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}

// String is Kafka's name of the protocol.
func (p SecurityProtocol) String() string {
	if int(p) < len(protocolNames) && p >= 0 {
		return protocolNames[p]
	}
	return fmt.Sprintf("SecurityProtocol(%d)", int8(p))
}

// TLS reports whether the protocol runs over TLS.
func (p SecurityProtocol) TLS() bool { return p == SSL || p == SASLSSL }

// SASL reports whether the protocol requires SASL authentication.
func (p SecurityProtocol) SASL() bool { return p == SASLPlaintext || p == SASLSSL }

// ParseSecurityProtocol parses Kafka's name of a protocol (case-insensitive).
func ParseSecurityProtocol(name string) (SecurityProtocol, error) {
	for i, n := range protocolNames {
		if strings.EqualFold(n, name) {
			return SecurityProtocol(i), nil
		}
	}
	return 0, fmt.Errorf("unknown security protocol %q (want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)", name)
}

// ListenerSpec is one listener of Kafka's listeners setting: PROTOCOL://host:port.
type ListenerSpec struct {
	Protocol SecurityProtocol
	Addr     string // host:port to listen on; an empty host listens on every address
}

// String formats the spec as Kafka does.
func (l ListenerSpec) String() string { return l.Protocol.String() + "://" + l.Addr }

// ParseListeners parses Kafka's listeners syntax, e.g. "SASL_SSL://:9093,PLAINTEXT://:9092":
// comma-separated PROTOCOL://host:port entries, the listener name being the protocol. Two
// listeners may not share a port, nor a protocol (Kafka's listener names are unique).
func ParseListeners(s string) ([]ListenerSpec, error) {
	var out []ListenerSpec
	ports := map[string]bool{}
	protos := map[SecurityProtocol]bool{}
	for _, ent := range strings.Split(s, ",") {
		ent = strings.TrimSpace(ent)
		if ent == "" {
			continue
		}
		name, addr, ok := strings.Cut(ent, "://")
		if !ok {
			return nil, fmt.Errorf("listener %q: want PROTOCOL://host:port", ent)
		}
		p, err := ParseSecurityProtocol(name)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", ent, err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", ent, err)
		}
		if strings.ContainsAny(host, "/ ") {
			return nil, fmt.Errorf("listener %q: bad host %q", ent, host)
		}
		var n int
		if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 0 || n > 65535 || fmt.Sprint(n) != port {
			return nil, fmt.Errorf("listener %q: bad port %q", ent, port)
		}
		if n != 0 && ports[port] {
			return nil, fmt.Errorf("listener %q: port %s used twice", ent, port)
		}
		if protos[p] {
			return nil, fmt.Errorf("listener %q: %s listed twice", ent, p)
		}
		ports[port], protos[p] = true, true
		out = append(out, ListenerSpec{Protocol: p, Addr: addr})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no listeners in %q", s)
	}
	return out, nil
}
