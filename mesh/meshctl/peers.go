package meshctl

import (
	"fmt"
	"strings"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/ticket"
)

// ParsePeers parses a peer list "<nodeid>@host:port,<nodeid>@host:port" as
// flags and RAFKA_SEED_NODES carry it; an item may also be a node ticket (package
// mesh/ticket: node id, relay URL and addresses in one string). A peer may list several addresses:
// an item without '@' is another address of the previous peer. Items may
// also be separated by spaces or newlines. An empty list is valid.
func ParsePeers(s string) ([]endpoint.NodeAddr, error) {
	var items []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		if !strings.Contains(f, "@") && len(items) > 0 && !looksLikeID(f) {
			items[len(items)-1] += "," + f
			continue
		}
		items = append(items, f)
	}
	var out []endpoint.NodeAddr
	for _, it := range items {
		a, err := ticket.ParseAddr(it)
		if err != nil {
			return nil, fmt.Errorf("peer %q: %w", it, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// looksLikeID: a bare node id (no address) is 52 base32 or 64 hex
// characters and has no ':'.
func looksLikeID(s string) bool { return !strings.Contains(s, ":") }
