package proto

import (
	"encoding/hex"
	"fmt"

	"github.com/zeebo/blake3"
)

// Key is a peer identity as it appears on the wire: the raw 32 bytes of an
// Ed25519 public key (iroh's NodeId).
type Key [32]byte

// TopicID names a gossip topic (32 application-chosen bytes).
type TopicID [32]byte

// String returns the lowercase hex form used by iroh.
func (t TopicID) String() string { return hex.EncodeToString(t[:]) }

// MessageID identifies a broadcast: blake3(content).
type MessageID [32]byte

// String returns the lowercase hex form.
func (m MessageID) String() string { return hex.EncodeToString(m[:]) }

// IDOf returns the MessageID of content (plain, unkeyed blake3-256).
func IDOf(content []byte) MessageID { return MessageID(blake3.Sum256(content)) }

// PeerData is the opaque address blob a peer attaches to Join, Neighbor and
// PeerInfo. In a Msg a nil PeerData means None and a non-nil empty slice
// means Some(empty).
type PeerData []byte

// Priority of a Neighbor request.
type Priority uint8

// Neighbor priorities (tags 0 and 1 on the wire).
const (
	High Priority = 0
	Low  Priority = 1
)

func (p Priority) String() string {
	if p == High {
		return "High"
	}
	return "Low"
}

// Round is the hop count of a swarm broadcast.
type Round uint16

// PeerInfo is a peer and, optionally, its data.
type PeerInfo[P comparable] struct {
	ID   P
	Data PeerData
}

// Msg is one topic message: a HyParView (Swarm) or Plumtree (Gossip) message.
// The concrete types are Join, ForwardJoin[P], Shuffle[P], ShuffleReply[P],
// Neighbor, Disconnect, Gossip, Prune, Graft and IHaves.
type Msg interface {
	// Kind names the variant.
	Kind() Kind
}

// Kind names a message variant.
type Kind uint8

// Message kinds, in wire order (Swarm variants then Gossip variants).
const (
	KindJoin Kind = iota
	KindForwardJoin
	KindShuffle
	KindShuffleReply
	KindNeighbor
	KindDisconnect
	KindGossip
	KindPrune
	KindGraft
	KindIHave
)

var kindNames = [...]string{"Join", "ForwardJoin", "Shuffle", "ShuffleReply", "Neighbor", "Disconnect", "Gossip", "Prune", "Graft", "IHave"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// IsSwarm reports whether k is a HyParView message.
func (k Kind) IsSwarm() bool { return k <= KindDisconnect }

// Join asks the receiver to add the sender to its active view.
type Join struct{ Data PeerData }

// ForwardJoin spreads a joining peer through a random walk.
type ForwardJoin[P comparable] struct {
	Peer PeerInfo[P]
	TTL  uint16
}

// Shuffle exchanges view samples through a random walk.
type Shuffle[P comparable] struct {
	Origin P
	Nodes  []PeerInfo[P]
	TTL    uint16
}

// ShuffleReply answers a Shuffle directly to its origin.
type ShuffleReply[P comparable] struct{ Nodes []PeerInfo[P] }

// Neighbor asks the receiver to keep the sender in its active view.
type Neighbor struct {
	Priority Priority
	Data     PeerData
}

// Disconnect removes the sender from the receiver's active view.
type Disconnect struct{ Alive, Respond bool }

// Scope of a Gossip: the whole swarm (with the hop round) or direct
// neighbors only.
type Scope struct {
	Neighbors bool
	Round     Round // meaningful when !Neighbors
}

// Gossip carries a broadcast payload.
type Gossip struct {
	ID      MessageID
	Content []byte
	Scope   Scope
}

// Valid reports whether ID matches blake3(Content).
func (g Gossip) Valid() bool { return IDOf(g.Content) == g.ID }

// Prune moves the sender into the receiver's lazy set.
type Prune struct{}

// Graft moves the sender into the receiver's eager set and, with an id, asks
// for that message.
type Graft struct {
	ID    *MessageID
	Round Round
}

// IHave announces one message the sender holds.
type IHave struct {
	ID    MessageID
	Round Round
}

// IHaves is a batch of announcements (plumtree::Message::IHave(Vec<IHave>)).
type IHaves []IHave

// Kind implementations.
func (Join) Kind() Kind            { return KindJoin }
func (ForwardJoin[P]) Kind() Kind  { return KindForwardJoin }
func (Shuffle[P]) Kind() Kind      { return KindShuffle }
func (ShuffleReply[P]) Kind() Kind { return KindShuffleReply }
func (Neighbor) Kind() Kind        { return KindNeighbor }
func (Disconnect) Kind() Kind      { return KindDisconnect }
func (Gossip) Kind() Kind          { return KindGossip }
func (Prune) Kind() Kind           { return KindPrune }
func (Graft) Kind() Kind           { return KindGraft }
func (IHaves) Kind() Kind          { return KindIHave }
