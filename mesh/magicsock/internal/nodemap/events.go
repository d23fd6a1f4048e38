package nodemap

import (
	"fmt"
	"net/netip"

	"github.com/meshkafka/meshkafka/mesh/disco"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Event is an input to Map.Handle: AddNode, SendPacket, RecvUDP, RecvRelay, RecvDisco or
// Tick.
type Event interface{ isEvent() }

// AddNode records what we learned about a node: a relay URL ("" keeps the known one) and
// direct candidates (added to the known ones).
type AddNode struct {
	ID       key.PublicKey
	RelayURL string
	Direct   []netip.AddrPort
}

// SendPacket: quic-go writes a packet to the mapped address To. The actions say where the
// packet goes (SendUDP, SendRelay), plus any disco the send triggers.
type SendPacket struct{ To netip.AddrPort }

// RecvUDP: a QUIC packet (neither STUN nor disco) arrived over UDP from Src. The action
// (Deliver) says which mapped address it is from; none means drop it.
type RecvUDP struct{ Src netip.AddrPort }

// RecvRelay: a QUIC packet arrived over the relay RelayURL from node From.
type RecvRelay struct {
	RelayURL string
	From     key.PublicKey
}

// RecvDisco: a disco message From sent (its box opened with From's key) arrived over UDP
// from Src, or over the relay RelayURL (then the relay said it came from From too).
type RecvDisco struct {
	From     key.PublicKey
	Src      netip.AddrPort
	RelayURL string
	Msg      disco.Message
}

// Tick is the heartbeat (the shell sends one every 500 ms): it expires pings and sends the
// stay-alive and full pings that are due.
type Tick struct{}

func (AddNode) isEvent()    {}
func (SendPacket) isEvent() {}
func (RecvUDP) isEvent()    {}
func (RecvRelay) isEvent()  {}
func (RecvDisco) isEvent()  {}
func (Tick) isEvent()       {}

// ActionKind names what an Action asks for.
type ActionKind uint8

// Actions.
const (
	// SendUDP: send the event's packet over UDP to Addr.
	SendUDP ActionKind = iota + 1
	// SendRelay: send the event's packet to Node over the relay Relay.
	SendRelay
	// Deliver: hand the event's packet to quic-go as coming from Mapped.
	Deliver
	// SendDisco: seal Msg for Node and send it over UDP to Addr, or over the relay Relay
	// when Relay is set.
	SendDisco
	// SendCallMeMaybe: send Node, over the relay Relay, a CallMeMaybe carrying our
	// current direct addresses (the shell knows them: its socket, STUN).
	SendCallMeMaybe
	// ForgetMapped: the mapped address Mapped (an anonymous peer's) is no longer in use.
	ForgetMapped
)

func (k ActionKind) String() string {
	switch k {
	case SendUDP:
		return "SendUDP"
	case SendRelay:
		return "SendRelay"
	case Deliver:
		return "Deliver"
	case SendDisco:
		return "SendDisco"
	case SendCallMeMaybe:
		return "SendCallMeMaybe"
	case ForgetMapped:
		return "ForgetMapped"
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// Action is one thing the shell must do. Which fields are set depends on Kind.
type Action struct {
	Kind   ActionKind
	Node   key.PublicKey  // the node concerned (zero for an anonymous peer)
	Addr   netip.AddrPort // SendUDP, SendDisco over UDP
	Relay  string         // SendRelay, SendDisco over a relay, SendCallMeMaybe
	Mapped netip.AddrPort // Deliver, ForgetMapped
	Msg    disco.Message  // SendDisco: a *disco.Ping or *disco.Pong
}
