package brokermesh

import (
	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// The broker's second check (issue #17 item 4, "two-plane ACL"): a gateway acts for the Kafka
// principal it authenticated, named in each request's header (brokerop.RequestHeader.Principal
// and ClientHost, from the context's brokerop.Acting on the gateway), and the broker checks
// both the calling node and the principal:
//
//   - A call naming a principal is refused unless the calling node may act for principals
//     (Guard.MayAct: a node the broker trusts as a gateway: its -trust list, or the gateway or
//     admin role in the cluster's metadata; the broker's own Kafka listener, in process).
//     A fellow broker may not: a broker-to-broker call carries no principal (the server never
//     passes a received principal on to the op, so a forwarded op names none).
//   - With authorization on (Guard.Authorizer returns one), the op is then authorized for the
//     principal from the client's host against the ACLs the broker holds, by
//     brokerop.AuthorizeOp (package acl's operation map, the same the gateway asks); a
//     refused op is answered StatusUnauthorized with the Kafka error code in the header, which
//     the Caller returns as a *brokerop.RefusedError: the gateway answers the client with it
//     (TOPIC_AUTHORIZATION_FAILED, …). A Metadata answer for all topics keeps only the topics
//     the principal may describe.
//   - A call naming no principal is the calling node's own (a broker's forwarded op, a
//     gateway's ACL, credential and routing lookups) and is checked by the node's trust and
//     role only, as before principals were carried. A gateway must name a principal for
//     every client request, authorization on or off on its side (User:ANONYMOUS for an
//     unauthenticated client, as Kafka names it).
//   - The principal is trusted as the gateway names it: a node with the gateway role can act
//     for anyone. The broker's check stops a gateway whose own authorization is off or
//     wrong, and any node without the role, not a gateway whose key is stolen.

// Guard is what a Server checks each call with (Server.SetGuard).
type Guard struct {
	// MayAct reports whether the calling node (its NodeId text, or a Local's name) may act
	// for a Kafka principal. nil: no node may.
	MayAct func(peer string) bool
	// Authorizer returns the ACL decisions in force, nil while authorization is off (every
	// principal may do everything). It is called once per call carrying a principal, so it
	// must be cheap (an atomic load; rebuilt when the ACLs change).
	Authorizer func() *acl.Cached
}

// SetGuard makes the server check every call with g (nil, the default: no checks, every
// call runs and a principal is ignored; a broker sets one, controller.StartNode).
func (s *Server) SetGuard(g *Guard) { s.guard.Store(g) }

// check authorizes c: nil, or the refusal to answer with. allow is the decision function of
// the call's principal (nil when none is checked), for FilterAnswer.
func (s *Server) check(c *inCall) (refused *brokerop.RefusedError, allow func(acl.Ask) bool) {
	g := s.guard.Load()
	if g == nil || c.h.Principal == "" {
		return nil, nil
	}
	if g.MayAct == nil || !g.MayAct(c.remote) {
		if _, logged := s.actLogged.LoadOrStore(c.remote, true); !logged {
			// Once per node: only trusted nodes get here, so the set is bounded.
			s.logger.Warn("kafkaop: refusing a principal named by a node without the gateway role (logged once per node)",
				"node", c.remote, "principal", c.h.Principal)
		}
		return &brokerop.RefusedError{Code: kafkaClusterAuthorizationFailed,
			Message: "node " + c.remote + " may not act for a Kafka principal (" + c.h.Principal + "): it has no gateway role"}, nil
	}
	if g.Authorizer == nil {
		return nil, nil
	}
	a := g.Authorizer()
	if a == nil {
		return nil, nil
	}
	p, host := c.h.Principal, c.h.ClientHost
	allow = func(q acl.Ask) bool { return a.Allows(p, host, q) }
	return brokerop.AuthorizeOp(c.body, p, allow), allow
}

// refuse answers c's refusal.
func (s *Server) refuse(c *inCall, r *brokerop.RefusedError) {
	resp := ResponseOf(c.h.RequestID)
	resp.Status, resp.Message, resp.ErrorCode = brokerop.StatusUnauthorized, r.Message, r.Code
	s.answer(c, nil, resp)
}
