package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// QuorumAdmin runs an operator's membership change on the leader (forwarded there).
func (c *Controller) QuorumAdmin(ctx context.Context, req *brokerop.QuorumAdminReq) (*brokerop.QuorumAdminResp, error) {
	id, err := key.ParsePublicKey(req.MeshID)
	if err != nil {
		return &brokerop.QuorumAdminResp{ErrorCode: kerr.InvalidRequest.Code, ErrorMessage: "bad NodeId: " + err.Error()}, nil
	}
	if !c.MayAdminister(ctx) {
		return &brokerop.QuorumAdminResp{ErrorCode: kerr.ClusterAuthorizationFailed.Code,
			ErrorMessage: fmt.Sprintf("node %s has no admin role (broker quorum allow -role admin %s)", brokermesh.PeerOf(ctx), brokermesh.PeerOf(ctx))}, nil
	}
	return route(c, ctx, req, func(ctx context.Context, req *brokerop.QuorumAdminReq) (*brokerop.QuorumAdminResp, error) {
		var err error
		switch req.Action {
		case ActionAllowGateway, ActionDisallowGateway, ActionAllowAdmin, ActionDisallowAdmin:
			err = c.setRoleLocal(ctx, id, req.Action) // security.go
		case brokerop.QuorumAllow:
			err = c.allowLocal(ctx, id, true)
		case brokerop.QuorumDisallow:
			err = c.allowLocal(ctx, id, false)
		case brokerop.QuorumAdd:
			err = c.addLocal(ctx, id)
		case brokerop.QuorumDecommission:
			err = c.decommissionLocal(ctx, id) // moves.go
		case brokerop.QuorumRemove:
			if id == c.cfg.Self.ID {
				return c.removeSelf(ctx, req)
			}
			err = c.removeLocal(ctx, id)
		default:
			return &brokerop.QuorumAdminResp{ErrorCode: kerr.InvalidRequest.Code, ErrorMessage: fmt.Sprintf("unknown action %q", req.Action)}, nil
		}
		var ae *adminError
		if errors.As(err, &ae) {
			return &brokerop.QuorumAdminResp{ErrorCode: ae.code, ErrorMessage: ae.msg}, nil
		}
		if err != nil {
			return nil, err
		}
		return &brokerop.QuorumAdminResp{}, nil
	}, brokerop.Service.QuorumAdmin)
}

type adminError struct {
	code int16
	msg  string
}

func (e *adminError) Error() string { return e.msg }

// Allow admits (or, with allow false, no longer admits) a NodeId to join the quorum.
func (c *Controller) Allow(ctx context.Context, id key.PublicKey, allow bool) error {
	action := brokerop.QuorumAllow
	if !allow {
		action = brokerop.QuorumDisallow
	}
	return c.admin(ctx, action, id)
}

// Add admits a NodeId and, once it is a learner, promotes it to voter.
func (c *Controller) Add(ctx context.Context, id key.PublicKey) error {
	return c.admin(ctx, brokerop.QuorumAdd, id)
}

// Remove removes a broker from the quorum and the broker table; its partitions are placed on
// live brokers again.
func (c *Controller) Remove(ctx context.Context, id key.PublicKey) error {
	return c.admin(ctx, brokerop.QuorumRemove, id)
}

func (c *Controller) admin(ctx context.Context, action string, id key.PublicKey) error {
	r, err := c.QuorumAdmin(ctx, &brokerop.QuorumAdminReq{Action: action, MeshID: id.String()})
	if err != nil {
		return err
	}
	if r.ErrorCode != 0 {
		return fmt.Errorf("controller: %s %s: Kafka error %d: %s", action, id, r.ErrorCode, r.ErrorMessage)
	}
	return nil
}

func (c *Controller) allowLocal(ctx context.Context, id key.PublicKey, allow bool) error {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	if err := c.r.ReadBarrier(ctx); err != nil {
		return err
	}
	if c.r.Allowed(id) == allow {
		return nil
	}
	_, err := c.r.Do(ctx, AllowBroker{NodeID: id, Allow: allow})
	return err
}

func (c *Controller) addLocal(ctx context.Context, id key.PublicKey) error {
	if err := c.allowLocal(ctx, id, true); err != nil {
		return err
	}
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	st := c.r.Status()
	for _, m := range c.r.Brokers() {
		if m.NodeID == id && slices.Contains(st.Learners, m.RaftID) {
			return c.r.Promote(ctx, m.RaftID)
		}
	}
	return nil // not a learner yet: it joins on its own, and the quorum promotes it while voters are missing
}

func (c *Controller) removeLocal(ctx context.Context, id key.PublicKey) error {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	if err := c.r.ReadBarrier(ctx); err != nil {
		return err
	}
	if id == c.cfg.Self.ID {
		return &adminError{kerr.InvalidRequest.Code, "the leader removes itself through removeSelf"} // not reached: QuorumAdmin sends it there
	}
	var m *Member
	for _, b := range c.r.Brokers() {
		if b.NodeID == id {
			m = &b
		}
	}
	if m == nil {
		return &adminError{kerr.BrokerNotAvailable.Code, fmt.Sprintf("broker %s is not registered", id)}
	}
	st := c.r.Status()
	if slices.Contains(st.Voters, m.RaftID) || slices.Contains(st.Learners, m.RaftID) {
		if err := c.r.RemoveMember(ctx, m.RaftID); err != nil {
			return err
		}
	}
	if _, err := c.r.Do(ctx, RemoveBroker{RaftID: m.RaftID}); err != nil {
		return err
	}
	if c.r.Allowed(id) {
		if _, err := c.r.Do(ctx, AllowBroker{NodeID: id, Allow: false}); err != nil {
			return err
		}
	}
	c.log.Info("broker removed from the quorum", "node", id.String(), "raft_id", m.RaftID)
	return c.reassignFrom(ctx, id)
}

// removeSelf removes the leader itself: it hands the leadership to the most caught-up live
// voter first, then asks that broker, the new leader, to remove it (a leader removing itself
// would leave the quorum leaderless until an election).
func (c *Controller) removeSelf(ctx context.Context, req *brokerop.QuorumAdminReq) (*brokerop.QuorumAdminResp, error) {
	c.adminMu.Lock()
	to, err := c.successor()
	c.adminMu.Unlock()
	var ae *adminError
	if errors.As(err, &ae) {
		return &brokerop.QuorumAdminResp{ErrorCode: ae.code, ErrorMessage: ae.msg}, nil
	}
	if err != nil {
		return nil, err
	}
	c.log.Info("removing the leader: handing the leadership over first", "to", to.NodeID.String(), "raft_id", to.RaftID)
	if err := c.r.TransferLeadership(ctx, to.RaftID); err != nil {
		return nil, fmt.Errorf("controller: hand the leadership to %s before removing this broker: %w", to.NodeID, err)
	}
	return c.callerOf(to).QuorumAdmin(ctx, req)
}

// successor picks the voter the leader hands over to: live, the furthest replicated (then
// the smallest raft id).
func (c *Controller) successor() (Member, error) {
	st := c.r.Status()
	live := c.sampleActive()
	var best *Member
	var bestMatch uint64
	for _, m := range c.r.Brokers() {
		if m.RaftID == c.r.RaftID() || !slices.Contains(st.Voters, m.RaftID) || !live[m.RaftID] {
			continue
		}
		match := st.Progress[m.RaftID].Match
		if best == nil || match > bestMatch || match == bestMatch && m.RaftID < best.RaftID {
			best, bestMatch = &m, match
		}
	}
	if best == nil {
		return Member{}, &adminError{kerr.InvalidRequest.Code, "this broker is the quorum's only live voter: add another broker before removing it"}
	}
	return *best, nil
}

// reassignFrom places the single-owner partitions owned by a removed broker on live brokers.
func (c *Controller) reassignFrom(ctx context.Context, gone key.PublicKey) error {
	for _, t := range c.r.Topics() {
		for p, o := range t.Owners {
			if o != gone || t.Replicas != nil {
				continue // replicated partitions: their replica there is offline until moved
			}
			to := c.placeOwners(t.Name, int32(p), int32(p)+1)[0]
			if _, err := c.r.Do(ctx, Reassign{Topic: t.Name, Partition: int32(p), Owner: to}); err != nil {
				return err
			}
		}
	}
	return nil
}

// --- admin HTTP ---

// QuorumStatus is GET /quorum/status: this node's raft view and the brokers it knows.
type QuorumStatus struct {
	NodeID       string         `json:"node_id"`
	RaftID       uint64         `json:"raft_id"`
	LeaderRaftID uint64         `json:"leader_raft_id"`
	LeaderNodeID string         `json:"leader_node_id"`
	Term         uint64         `json:"term"`
	Commit       uint64         `json:"commit"`
	Applied      uint64         `json:"applied"`
	ClusterID    string         `json:"cluster_id"`
	Brokers      []StatusBroker `json:"brokers"`
}

// StatusBroker is one broker in QuorumStatus. Live is known on the leader only (elsewhere
// false for the others).
type StatusBroker struct {
	NodeID  string   `json:"node_id"`
	RaftID  uint64   `json:"raft_id"`
	KafkaID int32    `json:"kafka_id"`
	Addrs   []string `json:"addrs"`
	Relay   string   `json:"relay"`
	Voter   bool     `json:"voter"`
	Learner bool     `json:"learner"`
	Live    bool     `json:"live"`
	Leader  bool     `json:"leader"`
	// Replicas is how many replicated partitions' raft groups the broker is in (or is being
	// added to): 0 once a decommission has drained it.
	Replicas int `json:"replicas"`
}

// Status returns this node's QuorumStatus (its own applied view, no barrier).
func (c *Controller) Status() QuorumStatus {
	st := c.r.Status()
	var live map[uint64]bool
	if st.Leader == st.RaftID {
		live = c.sampleActive()
	}
	out := QuorumStatus{NodeID: c.cfg.Self.ID.String(), RaftID: c.r.RaftID(), LeaderRaftID: st.Leader, Term: st.Term, Commit: st.Commit,
		Applied: st.Applied, ClusterID: c.r.ClusterID(), Brokers: []StatusBroker{}}
	counts := c.replicaCounts()
	for _, m := range c.members() {
		b := StatusBroker{NodeID: m.NodeID.String(), RaftID: m.RaftID, KafkaID: m.KafkaID, Relay: m.Addr.RelayURL, Addrs: []string{}, Replicas: counts[m.RaftID],
			Voter: slices.Contains(st.Voters, m.RaftID), Learner: slices.Contains(st.Learners, m.RaftID),
			Live: m.RaftID == st.RaftID || live[m.RaftID], Leader: m.RaftID == st.Leader}
		b.Addrs = appendAddrs(b.Addrs, m.Addr.Direct)
		if b.Leader {
			out.LeaderNodeID = b.NodeID
		}
		out.Brokers = append(out.Brokers, b)
	}
	return out
}

// AdminHandler serves the admin HTTP API (see the package doc). Serve it on loopback only.
func (c *Controller) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /quorum/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(c.Status())
	})
	// GET /quorum/partitions?topic=T: the topic's partitions as the quorum places them (Kafka
	// ids of the leader last reported, its epoch, replicas, ISR, offline replicas) — what a
	// stand-alone gateway's Metadata no longer names, since it stands in as every
	// partition's leader for its clients.
	mux.HandleFunc("GET /quorum/partitions", func(w http.ResponseWriter, r *http.Request) {
		topic := r.URL.Query().Get("topic")
		if topic == "" {
			http.Error(w, "missing ?topic=<name>", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		resp, err := c.Metadata(ctx, &brokerop.MetadataReq{Topics: []string{topic}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(resp.Topics)
	})
	for _, action := range []string{brokerop.QuorumAllow, brokerop.QuorumDisallow, brokerop.QuorumAdd, brokerop.QuorumRemove, brokerop.QuorumDecommission} {
		mux.HandleFunc("POST /quorum/"+action, func(w http.ResponseWriter, r *http.Request) {
			node := r.URL.Query().Get("node")
			if node == "" {
				http.Error(w, "missing ?node=<NodeId>", http.StatusBadRequest)
				return
			}
			act, err := RoleActionFor(action, r.URL.Query().Get("role"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
			defer cancel()
			resp, err := c.QuorumAdmin(ctx, &brokerop.QuorumAdminReq{Action: act, MeshID: node})
			switch {
			case err != nil:
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
			case resp.ErrorCode != 0:
				http.Error(w, fmt.Sprintf("%s (Kafka error %d)", resp.ErrorMessage, resp.ErrorCode), http.StatusBadRequest)
			default:
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, "{\"ok\": true, \"action\": %q, \"node\": %q}\n", action, node)
			}
		})
	}
	return mux
}

// DescribeQuorum describes the quorum from the leader's raft state (Kafka's DescribeQuorum):
// the leader's Kafka id, its term, the commit index, and every voter and learner with the
// last index known replicated there (raft Match) and when the leader last saw it active.
func (c *Controller) DescribeQuorum(ctx context.Context, req *brokerop.DescribeQuorumReq) (*brokerop.DescribeQuorumResp, error) {
	return routeAfterBarrier(c, ctx, req, func(ctx context.Context, req *brokerop.DescribeQuorumReq) (*brokerop.DescribeQuorumResp, error) {
		st := c.r.Status()
		c.sampleActive()
		now := c.clk.Now()
		c.mu.Lock()
		seen := maps.Clone(c.active)
		c.mu.Unlock()
		byRaft := map[uint64]Member{}
		for _, m := range c.r.Brokers() {
			byRaft[m.RaftID] = m
		}
		member := func(id uint64) brokerop.QuorumMember {
			qm := brokerop.QuorumMember{KafkaID: -1, RaftID: id, LogEnd: st.Progress[id].Match, LastContactMs: -1}
			if m, ok := byRaft[id]; ok {
				qm.KafkaID, qm.MeshID = m.KafkaID, m.NodeID.String()
			}
			switch at, ok := seen[id]; {
			case id == st.RaftID:
				qm.LastContactMs = now.UnixMilli()
			case ok:
				qm.LastContactMs = at.UnixMilli()
			}
			return qm
		}
		resp := &brokerop.DescribeQuorumResp{LeaderKafkaID: -1, Term: st.Term, Commit: st.Commit}
		if m, ok := byRaft[st.Leader]; ok {
			resp.LeaderKafkaID = m.KafkaID
		}
		for _, id := range st.Voters {
			resp.Voters = append(resp.Voters, member(id))
		}
		for _, id := range st.Learners {
			resp.Observers = append(resp.Observers, member(id))
		}
		return resp, nil
	}, brokerop.Service.DescribeQuorum)
}
