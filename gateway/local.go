package gateway

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/kafkawire"
)

// LocalPrincipal is the principal of requests made with Server.Local (the status page).
const LocalPrincipal = "User:meshkafka-status"

// Local runs one request through the server's own API table, in process, as LocalPrincipal
// (subject to the authorizer like any client; make it a super user to see everything), at the
// newest version both this server and kmsg know, and returns the response. Staged APIs
// (Produce) are not run: Local is for reads.
func (s *Server) Local(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	api, ok := lookupAPI(req.Key())
	if !ok || api.Handle == nil {
		return nil, fmt.Errorf("gateway: api key %d not served locally", req.Key())
	}
	v := min(api.MaxVersion, req.MaxVersion())
	req.SetVersion(v)
	h := kafkawire.RequestHeader{APIKey: req.Key(), APIVersion: v, ClientID: "meshkafka-status", Flexible: req.IsFlexible()}
	cs := &connState{principal: LocalPrincipal, authed: true, lis: listenerInfo{proto: Plaintext}}
	r := &Request{Header: h, Body: req, Server: s, conn: cs}
	return api.Handle(r.acting(ctx), r)
}
