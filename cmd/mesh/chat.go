package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/zeebo/blake3"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// ChatTopic is the gossip topic of a chat room: blake3-256 of the room name
// (plain, unkeyed), so every `mesh chat NAME` meets in the same topic.
func ChatTopic(name string) proto.TopicID { return proto.TopicID(blake3.Sum256([]byte(name))) }

// Chat message wire format (our own; not the iroh-gossip example's):
//
//	u8      version = 1
//	[32]    author node id
//	varint  len || utf-8 text (at most maxChatText bytes)
//	[64]    Ed25519 signature by the author over chatSigContext || every preceding byte
//
// The signature lets a receiver name the author (a gossip message is
// delivered by a neighbor, not necessarily by its author).
const (
	chatVersion    = 1
	maxChatText    = 4096
	chatSigContext = "meshkafka/chat/v1"
)

func encodeChat(sk key.SecretKey, text string) []byte {
	id := sk.Public().Bytes()
	b := append([]byte{chatVersion}, id[:]...)
	b = binary.AppendUvarint(b, uint64(len(text)))
	b = append(b, text...)
	return append(b, sk.Sign(append([]byte(chatSigContext), b...))...)
}

var errChat = errors.New("chat: malformed message")

func decodeChat(b []byte) (key.PublicKey, string, error) {
	if len(b) < 1+32+1+64 || b[0] != chatVersion {
		return key.PublicKey{}, "", errChat
	}
	body, sig := b[:len(b)-64], b[len(b)-64:]
	n, k := binary.Uvarint(body[33:])
	if k <= 0 || (k > 1 && body[33+k-1] == 0) || n > maxChatText || uint64(len(body)-33-k) != n {
		return key.PublicKey{}, "", errChat
	}
	text := body[33+k:]
	if !utf8.Valid(text) {
		return key.PublicKey{}, "", errChat
	}
	pk, err := key.PublicKeyFromBytes(body[1:33])
	if err != nil {
		return key.PublicKey{}, "", errChat
	}
	if !pk.Verify(append([]byte(chatSigContext), body...), sig) {
		return key.PublicKey{}, "", errors.New("chat: bad signature")
	}
	return pk, string(text), nil
}

// chat joins the room and relays lines: stdin to the room, the room to out.
// The first line printed is our "<nodeid>@host:port" for others to
// bootstrap from, the second ("# room ...") says we have joined the topic.
// EOF on in stops sending; ctx ends the chat.
func chat(ctx context.Context, ep *endpoint.Endpoint, room string, boot []endpoint.NodeAddr, in io.Reader, out io.Writer) error {
	g, err := gossip.Attach(ep, gossip.Config{})
	if err != nil {
		return err
	}
	defer g.Close()
	var ids []key.PublicKey
	for _, b := range boot {
		ep.AddNodeAddr(b)
		ids = append(ids, b.ID)
	}
	fmt.Fprintln(out, ep.Addr())
	topic := ChatTopic(room)
	t, err := g.Subscribe(ctx, topic, ids)
	if err != nil {
		return err
	}
	defer t.Close()
	// Printed once we are in the topic: from now on a Join sent to us is
	// answered (before, it is ignored, as in iroh-gossip). A line typed while
	// we have no neighbor reaches nobody (Plumtree pushes a broadcast only to
	// the neighbors of the moment); "# neighbor up" lines tell when we have one.
	fmt.Fprintf(out, "# room %q topic %s; type lines to send\n", room, topic)

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 4096), 64<<10)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	sk := ep.SecretKey()
	events := t.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				lines = nil // stdin ended: keep listening
				continue
			}
			line = strings.TrimRight(line, "\r")
			if line == "" {
				continue
			}
			if len(line) > maxChatText {
				fmt.Fprintf(out, "# line too long (%d bytes > %d), not sent\n", len(line), maxChatText)
				continue
			}
			if err := t.Broadcast(ctx, encodeChat(sk, line)); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			switch ev.Kind {
			case gossip.Received:
				from, text, err := decodeChat(ev.Content)
				if err != nil {
					fmt.Fprintf(out, "# dropped a message via %s: %v\n", ev.Peer.ShortString(), err)
					continue
				}
				fmt.Fprintf(out, "%s: %s\n", from.ShortString(), text)
			case gossip.NeighborUp, gossip.Joined:
				fmt.Fprintf(out, "# neighbor up %s\n", ev.Peer.ShortString())
			case gossip.NeighborDown:
				fmt.Fprintf(out, "# neighbor down %s\n", ev.Peer.ShortString())
			case gossip.Lagged:
				fmt.Fprintln(out, "# lagged: some messages were missed")
			}
		}
	}
}
