package replmesh

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/broker/internal/meshlink/meshlinktest"
	"github.com/meshkafka/meshkafka/broker/quorum/raftmesh"
	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/internal/meshtest/magicep"
	"github.com/meshkafka/meshkafka/internal/meshtest/natlab"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lab is a magicep.Lab: a natlab internet with an in-memory relay, UDP, relay, QUIC timers,
// raft ticks and backoff all inside a synctest bubble, in virtual time, touching no socket.
type lab struct{ *magicep.Lab }

func newLab(t *testing.T, viaRelay bool) *lab { return &lab{magicep.NewLab(t, viaRelay)} }

// broker is one replica node: a machine, a magicsock and endpoint, a replmesh transport and
// an Engine.
type broker struct {
	id  uint64
	sk  key.SecretKey
	ms  *magicsock.Conn
	ep  *endpoint.Endpoint
	tr  *Transport
	eng *replica.Engine

	trusted meshlinktest.Keys
	sms     map[replica.GroupID]*sm
	stores  map[replica.GroupID]*replica.MemoryStorage
}

// sm records the data entries a group applied.
type sm struct {
	mu   sync.Mutex
	data []string
	last uint64
}

func (s *sm) Apply(ents []*raftpb.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range ents {
		s.last = e.GetIndex()
		if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
			s.data = append(s.data, string(e.GetData()))
		}
	}
}
func (s *sm) Restore(*raftpb.Snapshot)  {}
func (s *sm) LeaderChanged(_, _ uint64) {}
func (s *sm) applied() (uint64, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, slices.Clone(s.data)
}

func (l *lab) start(t *testing.T, id uint64) *broker {
	t.Helper()
	b := &broker{id: id, sk: key.GenerateSecretKey(),
		sms: map[replica.GroupID]*sm{}, stores: map[replica.GroupID]*replica.MemoryStorage{}}
	b.ms, b.ep = l.Endpoint(t, l.Machine(), b.sk)
	startEngine(t, b)
	t.Cleanup(b.stop)
	return b
}

func startEngine(t *testing.T, b *broker) {
	t.Helper()
	b.tr = New(b.ep, Config{Trust: b.trusted.Trusts, ID: b.id, Log: slog.New(slog.DiscardHandler)})
	eng, err := replica.New(replica.Config{ID: b.id, Transport: b.tr, Sync: func() error { return nil },
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	b.eng = eng
	b.tr.Attach(eng)
}

// stop stops the Engine and the transport (the endpoint stays).
func (b *broker) stopEngine() {
	if b.eng != nil {
		b.eng.Stop()
		_ = b.tr.Close()
		b.eng = nil
	}
}

func (b *broker) stop() {
	b.stopEngine()
	_ = b.ep.Close()
}

// meet makes every broker trust and know every other.
func meet(bs ...*broker) {
	meshlinktest.Meet(bs, func(a, b *broker) {
		a.trusted.Set(b.sk.Public(), true)
		a.eng.AddPeer(b.id, raftmesh.EncodeAddr(b.ep.Addr()))
	})
}

func gid(i int) replica.GroupID { return group(0xC0, int32(i)) }

// run runs groups 0..n-1 on every broker with all of them as voters.
func run(t *testing.T, n int, bs ...*broker) {
	t.Helper()
	var voters []uint64
	for _, b := range bs {
		voters = append(voters, b.id)
	}
	for _, b := range bs {
		for i := range n {
			g := gid(i)
			st := b.stores[g]
			if st == nil {
				st = replica.NewMemoryStorage()
				b.stores[g] = st
			}
			s := &sm{}
			b.sms[g] = s
			if err := b.eng.AddGroup(g, st, s, voters); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// leader waits (virtual time) for a leader of g that every running broker in bs agrees on.
func leader(t *testing.T, g replica.GroupID, bs ...*broker) *broker {
	t.Helper()
	for range 1200 {
		votes := map[uint64]int{}
		var lead *broker
		for _, b := range bs {
			st, ok := b.eng.Status(g)
			if !ok {
				continue
			}
			votes[st.Leader]++
			if st.Leader == b.id {
				lead = b
			}
		}
		if lead != nil && votes[lead.id] == len(bs) {
			return lead
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("group %v: no leader", g)
	return nil
}

func commit(t *testing.T, b *broker, g replica.GroupID, data string) *replica.Proposal {
	t.Helper()
	p, err := b.eng.Propose(context.Background(), g, []byte(data))
	if err != nil {
		t.Fatalf("propose on %d: %v", b.id, err)
	}
	if err := <-p.Committed; err != nil {
		t.Fatalf("commit on %d: %v", b.id, err)
	}
	return p
}

func waitApplied(t *testing.T, b *broker, g replica.GroupID, index uint64) []string {
	t.Helper()
	for range 1200 {
		if last, data := b.sms[g].applied(); last >= index {
			return data
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("broker %d group %v: index %d not applied", b.id, g, index)
	return nil
}

// TestEnginesOverMesh: three Engines replicate 20 groups over replmesh (direct UDP paths, then
// relay only with every UDP packet dropped): every group elects a leader, commits proposals
// on all three replicas, and fails over when its leader's broker stops.
func TestEnginesOverMesh(t *testing.T) {
	for _, viaRelay := range []bool{false, true} {
		t.Run(fmt.Sprintf("relay=%v", viaRelay), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const groups = 20
				l := newLab(t, viaRelay)
				if viaRelay {
					l.Net.SetDrop(func(natlab.Packet) bool { return true })
				}
				bs := []*broker{l.start(t, 11), l.start(t, 22), l.start(t, 33)}
				meet(bs...)
				run(t, groups, bs...)
				for i := range groups {
					g := gid(i)
					p := commit(t, leader(t, g, bs...), g, fmt.Sprintf("g%d-a", i))
					for _, b := range bs {
						if got := waitApplied(t, b, g, p.Index); !slices.Equal(got, []string{fmt.Sprintf("g%d-a", i)}) {
							t.Fatalf("broker %d group %d applied %q", b.id, i, got)
						}
					}
				}
				var frames, sent uint64
				for _, b := range bs {
					st := b.tr.Stats()
					if st.Refused != 0 || st.Delivered == 0 {
						t.Errorf("broker %d: stats %+v", b.id, st)
					}
					frames += st.Frames
					sent += st.Sent
				}
				if frames >= sent {
					t.Errorf("%d frames for %d messages: nothing coalesced", frames, sent)
				}
				// Fail over group 0: stop its leader's engine.
				g := gid(0)
				old := leader(t, g, bs...)
				old.stopEngine()
				var rest []*broker
				for _, b := range bs {
					if b != old {
						rest = append(rest, b)
					}
				}
				p := commit(t, leader(t, g, rest...), g, "g0-b")
				for _, b := range rest {
					waitApplied(t, b, g, p.Index)
				}
				if viaRelay {
					if s := l.Relay.Stats(); s.PacketsSent == 0 {
						t.Fatal("nothing went through the relay")
					}
					if d := l.Net.Stats(); d.Delivered != 0 {
						t.Fatalf("%d UDP packets delivered with UDP blocked", d.Delivered)
					}
				}
			})
		})
	}
}

// TestUntrustedRefused: a broker that is not trusted gets nothing delivered: its connections
// are refused, so the two trusting each other form the group's majority alone.
func TestUntrustedRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, false)
		a, b, c := l.start(t, 1), l.start(t, 2), l.start(t, 3)
		meet(a, b, c)
		for _, x := range []*broker{a, b} {
			x.trusted.Set(c.sk.Public(), false)
		}
		run(t, 1, a, b, c)
		g := gid(0)
		lead := leader(t, g, a, b)
		p := commit(t, lead, g, "x")
		waitApplied(t, a, g, p.Index)
		waitApplied(t, b, g, p.Index)
		if last, _ := c.sms[g].applied(); last >= p.Index {
			t.Fatal("the untrusted broker received the entry")
		}
		if a.tr.Stats().Refused+b.tr.Stats().Refused == 0 {
			t.Fatal("no connection refused")
		}
		if st, _ := c.eng.Status(g); st.Leader == c.id {
			t.Fatal("the untrusted broker leads")
		}
	})
}
