package controller

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/syncbuf"
)

// staleSyncReplica is a Replica that, on the proposal arm chose, starts a syncBroker (as
// the sync loop does after any apply) and lets the proposal go on only once that syncBroker
// read the topics (or after a second, if it cannot read them yet: it waits for the broker's
// admin lock, which the op holds).
type staleSyncReplica struct {
	Replica
	ctl     atomic.Pointer[Controller]
	trigger atomic.Pointer[string] // a Command's type (%T): arm on the next proposal of it
	armed   atomic.Bool            // a syncBroker reading the topics now signals read
	read    chan struct{}          // capacity 1
	done    chan struct{}          // closed when the started syncBroker returned
}

func (r *staleSyncReplica) Topics() []Topic {
	ts := r.Replica.Topics()
	if r.armed.Load() && inSyncBroker() {
		select {
		case r.read <- struct{}{}:
		default:
		}
	}
	return ts
}

func (r *staleSyncReplica) Do(ctx context.Context, cmd Command) (any, error) {
	if tr := r.trigger.Load(); tr != nil && *tr == fmt.Sprintf("%T", cmd) && r.trigger.CompareAndSwap(tr, nil) {
		r.armed.Store(true)
		go func() {
			defer close(r.done)
			r.ctl.Load().syncBroker()
		}()
		select {
		case <-r.read:
		case <-time.After(time.Second):
		}
		r.armed.Store(false)
	}
	return r.Replica.Do(ctx, cmd)
}

// arm makes the next proposal of cmd's type start a syncBroker.
func (r *staleSyncReplica) arm(cmd Command) {
	tr := fmt.Sprintf("%T", cmd)
	r.trigger.Store(&tr)
}

// inSyncBroker reports whether the calling goroutine runs Controller.syncBroker.
func inSyncBroker() bool {
	buf := make([]byte, 64<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), "(*Controller).syncBroker")
}

// A sync of the broker to the metadata state that read the state before the leader's own
// DeleteTopics (CreateTopics) was applied, and reached the broker after the broker made the
// change, must not undo it (chaos run, session 10: the quorum leader created a deleted RF=3
// topic again with an empty log, its partition's group bootstrapped again there while the
// partition's leader still counted the entries the old log had acknowledged, and etcd raft
// panicked: "tocommit(7) is out of range [lastIndex(3)]"). The sync loop reads the state
// when an apply signals a change, so any apply during the op's proposal (an ISR update, a
// broker's registration) raced it.
func TestLeaderAdminOpNotUndoneByConcurrentSync(t *testing.T) {
	t.Run("delete", func(t *testing.T) {
		h, rep, logs := newStaleSyncHarness(t)
		createTopic(t, h, "t")
		before := len(logs.String())
		rep.arm(DeleteTopics{})
		ctx, cancel := ctx5()
		defer cancel()
		dr, err := h.caller(0).DeleteTopics(ctx, &brokerop.DeleteTopicsReq{Topics: []string{"t"}})
		if err != nil || dr.Topics[0].ErrorCode != 0 {
			t.Fatalf("delete: %+v, %v", dr, err)
		}
		after := rep.wait(t, logs, before)
		if !strings.Contains(after, `msg="broker: deleted topic" topic=t`) {
			t.Fatalf("the broker did not delete the topic; its log since:\n%s", after)
		}
		if strings.Contains(after, `msg="broker: topic from the cluster" topic=t`) {
			t.Fatalf("a sync that read the state before the deletion created the deleted topic again; the broker's log since:\n%s", after)
		}
	})
	t.Run("create", func(t *testing.T) {
		h, rep, logs := newStaleSyncHarness(t)
		before := len(logs.String())
		rep.arm(CreateTopics{})
		createTopic(t, h, "t")
		after := rep.wait(t, logs, before)
		if strings.Contains(after, `msg="broker: deleted topic" topic=t`) {
			t.Fatalf("a sync that read the state before the creation deleted the new topic; the broker's log since:\n%s", after)
		}
	})
}

// newStaleSyncHarness starts a one-broker cluster whose Replica is a staleSyncReplica and
// whose broker logs to the returned buffer.
func newStaleSyncHarness(t *testing.T) (*harness, *staleSyncReplica, *syncbuf.Buffer) {
	h := newHarness(t, 1)
	rep := &staleSyncReplica{read: make(chan struct{}, 1), done: make(chan struct{})}
	h.replica = map[int]func(Replica) Replica{0: func(r Replica) Replica { rep.Replica = r; return rep }}
	logs := &syncbuf.Buffer{}
	h.logs = map[int]*slog.Logger{0: slog.New(slog.NewTextHandler(logs, nil))}
	n := h.start(0, true, h.seeds)
	rep.ctl.Store(n.ctl)
	h.waitMembers(0, 1, 1)
	return h, rep, logs
}

func createTopic(t *testing.T, h *harness, name string) {
	t.Helper()
	ctx, cancel := ctx5()
	defer cancel()
	cr, err := h.caller(0).CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: name, NumPartitions: 1, ReplicationFactor: 1}}})
	if err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v, %v", cr, err)
	}
}

// wait waits for the syncBroker the trigger started and returns the broker's log from
// offset before on.
func (r *staleSyncReplica) wait(t *testing.T, logs *syncbuf.Buffer, before int) string {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the concurrent syncBroker did not return")
	}
	return logs.String()[before:]
}
