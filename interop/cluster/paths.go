package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// MeshPath is one row of a broker's GET /mesh/paths (cmd/broker's admin API): how one live mesh
// connection reaches its peer right now.
type MeshPath struct {
	NodeID string  `json:"node_id"`
	ALPN   string  `json:"alpn"`
	Path   string  `json:"path"`   // direct, relay or unknown
	Remote string  `json:"remote"` // the peer's UDP address when direct
	Relay  string  `json:"relay"`  // the relay's URL when relayed
	RTTMs  float64 `json:"rtt_ms"`
}

// MeshPaths asks the broker's admin API for the path of each of its live mesh connections.
func (b *Broker) MeshPaths() ([]MeshPath, error) {
	body, err := b.AdminCall(http.MethodGet, "/mesh/paths")
	if err != nil {
		return nil, err
	}
	var ps []MeshPath
	if err := json.Unmarshal(body, &ps); err != nil {
		return nil, fmt.Errorf("%s: /mesh/paths: %v: %s", b.Name, err, body)
	}
	return ps, nil
}
