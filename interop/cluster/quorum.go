package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/controller"
)

// RequireQuorum skips tb unless the broker binary has the metadata quorum's flags (a tree
// without issue #15), and in -short mode.
func RequireQuorum(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("process tests skipped in -short mode")
	}
	out, _ := exec.Command(Bin(tb, "broker"), "-h").CombinedOutput()
	if !strings.Contains(string(out), "quorum-seeds") {
		tb.Skip("cmd/broker has no -quorum-seeds flag: the metadata quorum (issue #15) is not in this tree")
	}
}

// QuorumStatus is GET /quorum/status of a broker's admin API, decoded into
// broker/controller's own QuorumStatus (one declaration of that JSON for the server and the
// harness).
type QuorumStatus struct{ controller.QuorumStatus }

// QuorumMember is one broker of a QuorumStatus.
type QuorumMember = controller.StatusBroker

// Member is the broker with NodeId id in s.
func (s *QuorumStatus) Member(id string) (QuorumMember, bool) {
	for _, m := range s.Brokers {
		if m.NodeID == id {
			return m, true
		}
	}
	return QuorumMember{}, false
}

// Voters lists the voters' NodeIds, sorted.
func (s *QuorumStatus) Voters() []string {
	var out []string
	for _, m := range s.Brokers {
		if m.Voter {
			out = append(out, m.NodeID)
		}
	}
	slices.Sort(out)
	return out
}

// AdminCall calls the broker's admin API (Options.Quorum gives every broker one) and returns
// the body of a 200 answer.
func (b *Broker) AdminCall(method, path string) ([]byte, error) {
	return b.adminCall(b.HTTPClient(), method, path)
}

func (b *Broker) adminCall(cl *http.Client, method, path string) ([]byte, error) {
	req, err := http.NewRequest(method, "http://"+b.Admin+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("%s %s on %s: %s: %s", method, path, b.Name, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// QuorumStatus asks the broker's admin API for its view of the quorum.
func (b *Broker) QuorumStatus() (*QuorumStatus, error) {
	body, err := b.AdminCall(http.MethodGet, "/quorum/status")
	if err != nil {
		return nil, err
	}
	var s QuorumStatus
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("%s: /quorum/status: %v: %s", b.Name, err, body)
	}
	return &s, nil
}

// WaitFor polls cond every 50 ms until it holds; timeout is a hang bound (tb fails on expiry
// with what cond last reported), not a speed assertion.
func WaitFor(tb testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not reached within %v; last seen: %s", what, timeout, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Running lists the brokers whose current incarnation is alive.
func (c *Cluster) Running() []*Broker {
	var out []*Broker
	for _, b := range c.Brokers {
		if b.Running() {
			out = append(out, b)
		}
	}
	return out
}

// BrokerByNodeID is the broker with mesh NodeId id (nil if none).
func (c *Cluster) BrokerByNodeID(id string) *Broker {
	for _, b := range c.Brokers {
		if b.ID == id {
			return b
		}
	}
	return nil
}

// QuorumLeader waits until every broker of among answers its status, all name one leader,
// and that leader names itself and has every one of among (up to 3) as a voter; it returns
// the leader and its status. Two cluster ids among the answers (split brain) fail tb at once.
func (c *Cluster) QuorumLeader(tb testing.TB, among []*Broker, timeout time.Duration) (*Broker, *QuorumStatus) {
	tb.Helper()
	var leader *Broker
	var ls *QuorumStatus
	WaitFor(tb, "a quorum leader every broker names", timeout, func() (bool, string) {
		var views []string
		statuses := map[string]*QuorumStatus{}
		clusters := map[string]bool{}
		for _, b := range among {
			s, err := b.QuorumStatus()
			if err != nil {
				return false, err.Error()
			}
			statuses[b.ID] = s
			if s.ClusterID != "" {
				clusters[s.ClusterID] = true
			}
			views = append(views, fmt.Sprintf("%s: leader %.8s term %d commit %d applied %d", b.Name, s.LeaderNodeID, s.Term, s.Commit, s.Applied))
		}
		if len(clusters) > 1 {
			tb.Fatalf("split brain: %d cluster ids: %s", len(clusters), strings.Join(views, "; "))
		}
		id := statuses[among[0].ID].LeaderNodeID
		for _, s := range statuses {
			if s.LeaderNodeID != id {
				return false, strings.Join(views, "; ")
			}
		}
		ls = statuses[id]
		if ls == nil || ls.LeaderNodeID != id || len(ls.Voters()) < min(len(among), 3) {
			return false, strings.Join(views, "; ")
		}
		leader = c.BrokerByNodeID(id)
		return leader != nil, strings.Join(views, "; ")
	})
	return leader, ls
}

// KafkaIDs maps every registered broker's Kafka broker id to its process, as the running
// brokers' quorum status says (the first that answers).
func (c *Cluster) KafkaIDs() (map[int32]*Broker, error) {
	var errs []string
	for _, b := range c.Running() {
		s, err := b.QuorumStatus()
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		out := map[int32]*Broker{}
		for _, m := range s.Brokers {
			if br := c.BrokerByNodeID(m.NodeID); br != nil && m.KafkaID > 0 {
				out[m.KafkaID] = br
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("no running broker answered its quorum status: %s", strings.Join(errs, "; "))
}

// PartitionView is one partition as the metadata quorum places it (GET /quorum/partitions):
// Kafka ids of its leader (-1: none), replicas, in-sync and offline replicas.
type PartitionView struct {
	Partition       int32
	Leader          int32
	LeaderEpoch     int32
	Replicas        []int32
	ISR             []int32
	OfflineReplicas []int32
	ErrorCode       int16
}

// Partitions asks the broker's admin API for topic's partitions as the quorum places them
// (a stand-alone gateway names itself as every partition's leader, so tests that need the
// real leader ask here).
func (b *Broker) Partitions(topic string) ([]PartitionView, error) {
	cl := b.HTTPClient()
	cl.Timeout = 3 * time.Second // a paused broker must not hold the caller up for long
	body, err := b.adminCall(cl, http.MethodGet, "/quorum/partitions?topic="+url.QueryEscape(topic))
	if err != nil {
		return nil, err
	}
	var topics []struct {
		Name       string
		ErrorCode  int16
		Partitions []PartitionView
	}
	if err := json.Unmarshal(body, &topics); err != nil {
		return nil, fmt.Errorf("%s: /quorum/partitions: %w", b.Name, err)
	}
	for _, t := range topics {
		if t.Name == topic {
			if t.ErrorCode != 0 {
				return nil, fmt.Errorf("%s: topic %s: error code %d", b.Name, topic, t.ErrorCode)
			}
			return t.Partitions, nil
		}
	}
	return nil, fmt.Errorf("%s: topic %s not placed", b.Name, topic)
}
