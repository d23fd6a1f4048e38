package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/syncbuf"
	"github.com/meshkafka/meshkafka/mesh/key"
)

type chatter struct {
	addr string
	id   string // short id
	in   *io.PipeWriter
	out  syncbuf.Buffer // what the chat printed
}

func (c *chatter) waitFor(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(c.out.String(), what) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never printed %q; output:\n%s", c.id, what, c.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startChat(t *testing.T, room string, boot ...*chatter) *chatter {
	t.Helper()
	pr, pw := io.Pipe()
	c := &chatter{in: pw}
	args := []string{"chat", room, "-bind", "127.0.0.1:0"}
	if len(boot) > 0 {
		args = append(args, "bootstrap")
	}
	for _, b := range boot {
		args = append(args, b.addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runIO(ctx, args, pr, &c.out) }()
	t.Cleanup(func() {
		pw.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("chat: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if line, _, ok := strings.Cut(c.out.String(), "\n"); ok {
			c.addr = line
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("chat printed no address")
		}
		time.Sleep(10 * time.Millisecond)
	}
	id, _, _ := strings.Cut(c.addr, "@")
	pk, err := key.ParsePublicKey(id)
	if err != nil {
		t.Fatalf("first line %q is not a node address: %v", c.addr, err)
	}
	c.id = pk.ShortString()
	// Only once it is in the topic does it answer a Join (before, a Join is
	// ignored, and a node that already has another neighbor never retries).
	c.waitFor(t, fmt.Sprintf("# room %q", room))
	return c
}

// waitNeighbors waits until c has printed "# neighbor up" for each of peers.
func (c *chatter) waitNeighbors(t *testing.T, peers ...*chatter) {
	t.Helper()
	for _, p := range peers {
		c.waitFor(t, "# neighbor up "+p.id+"\n")
	}
}

// TestChatThreeNodes: three `mesh chat` runs on loopback (b bootstraps from a, c from b) each
// see every line the others type, labelled with the author's short id, even when it was
// relayed; a run in another room sees none of it.
func TestChatThreeNodes(t *testing.T) {
	a := startChat(t, "room-1")
	b := startChat(t, "room-1", a)
	c := startChat(t, "room-1", b)
	other := startChat(t, "room-2", a)
	// Plumtree pushes a broadcast only to the author's neighbors of the
	// moment, and each hop forwards only to its own: a line sent while the
	// author has no neighbor yet reaches nobody (as in iroh-gossip). The
	// swarm forms asynchronously (b may see c before a has answered b's
	// Join), so "someone printed a neighbor" is not enough: wait until both
	// ends of a-b and b-c are up. (A third edge a-c may or may not form.)
	a.waitNeighbors(t, b)
	b.waitNeighbors(t, a, c)
	c.waitNeighbors(t, b)
	all := []*chatter{a, b, c}
	for i, from := range all {
		msg := fmt.Sprintf("hello %d from %s", i, from.id)
		if _, err := io.WriteString(from.in, msg+"\n"); err != nil {
			t.Fatal(err)
		}
		for _, to := range all {
			if to != from {
				to.waitFor(t, from.id+": "+msg)
			}
		}
	}
	if strings.Contains(a.out.String(), a.id+": ") {
		t.Fatal("a printed its own line back")
	}
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(other.out.String(), "hello") {
		t.Fatalf("another room got the messages:\n%s", other.out.String())
	}
}

func TestChatCodec(t *testing.T) {
	sk := key.GenerateSecretKey()
	b := encodeChat(sk, "héllo")
	from, text, err := decodeChat(b)
	if err != nil || from != sk.Public() || text != "héllo" {
		t.Fatalf("%v %q %v", from, text, err)
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		if _, _, err := decodeChat(c); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	if _, _, err := decodeChat(b[:len(b)-1]); err == nil {
		t.Fatal("truncated accepted")
	}
	if err := runIO(t.Context(), []string{"chat"}, strings.NewReader(""), io.Discard); err == nil {
		t.Fatal("chat without a room")
	}
	if err := runIO(t.Context(), []string{"chat", "r", "bogus@1.2.3.4:5"}, strings.NewReader(""), io.Discard); err == nil {
		t.Fatal("bad bootstrap accepted")
	}
}

func FuzzDecodeChat(f *testing.F) {
	sk := key.GenerateSecretKey()
	f.Add(encodeChat(sk, "hi"))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		from, text, err := decodeChat(b)
		if err != nil {
			return
		}
		if from == sk.Public() && !bytes.Equal(encodeChat(sk, text), b) {
			// Ed25519 signatures are deterministic: a valid message re-encodes identically.
			t.Fatalf("decoded %q but re-encoding differs", text)
		}
	})
}
