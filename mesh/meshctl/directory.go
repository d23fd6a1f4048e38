package meshctl

import (
	"slices"
	"time"

	"github.com/meshkafka/meshkafka/mesh/key"
)

// ChangeKind says what happened to a node in the Directory.
type ChangeKind uint8

// Changes.
const (
	// Up: a node not in the directory was heard from.
	Up ChangeKind = iota + 1
	// Updated: a known node's addresses or role changed (load changes are
	// not reported: they change all the time).
	Updated
	// Down: a node was not heard from for the staleness period.
	Down
)

func (k ChangeKind) String() string {
	switch k {
	case Up:
		return "up"
	case Updated:
		return "updated"
	case Down:
		return "down"
	}
	return "?"
}

// Change is one directory change.
type Change struct {
	Kind   ChangeKind
	Digest Digest // the new digest (Up, Updated) or the last one (Down)
}

// Entry is a directory entry.
type Entry struct {
	Digest
	Heard time.Time // receiver's clock: when the digest was accepted
}

// Directory keeps the latest digest per node of one mesh. It does no I/O and
// reads no clock: callers pass now. It is not safe for concurrent use.
type Directory struct {
	meshID    string
	staleness time.Duration
	nodes     map[key.PublicKey]*Entry
}

// NewDirectory returns an empty directory for meshID; entries expire after
// staleness without news.
func NewDirectory(meshID string, staleness time.Duration) *Directory {
	return &Directory{meshID: meshID, staleness: staleness, nodes: map[key.PublicKey]*Entry{}}
}

// Observe records d heard at now. It returns the change it caused, if any
// (ok false: nothing worth reporting, or the digest was old or foreign).
func (dir *Directory) Observe(now time.Time, d Digest) (Change, bool) {
	if d.MeshID != dir.meshID {
		return Change{}, false
	}
	e, known := dir.nodes[d.Node]
	if known && now.Sub(e.Heard) >= dir.staleness {
		// Expired but not yet collected: treat as gone, so a restarted node
		// with a smaller seq is accepted.
		known = false
	}
	if known && d.Seq <= e.Seq {
		return Change{}, false
	}
	d.Addrs = slices.Clone(d.Addrs)
	dir.nodes[d.Node] = &Entry{Digest: d, Heard: now}
	switch {
	case !known:
		return Change{Kind: Up, Digest: d}, true
	case e.Role != d.Role || !slices.Equal(e.Addrs, d.Addrs):
		return Change{Kind: Updated, Digest: d}, true
	}
	return Change{}, false
}

// Expire removes the nodes not heard from for the staleness period and
// returns them as Down changes, sorted by node id.
func (dir *Directory) Expire(now time.Time) []Change {
	var out []Change
	for id, e := range dir.nodes {
		if now.Sub(e.Heard) >= dir.staleness {
			delete(dir.nodes, id)
			out = append(out, Change{Kind: Down, Digest: e.Digest})
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return cmpKey(a.Digest.Node, b.Digest.Node) })
	return out
}

// Get returns the entry for id, if it is fresh at now.
func (dir *Directory) Get(now time.Time, id key.PublicKey) (Entry, bool) {
	e, ok := dir.nodes[id]
	if !ok || now.Sub(e.Heard) >= dir.staleness {
		return Entry{}, false
	}
	c := *e
	c.Addrs = slices.Clone(e.Addrs)
	return c, true
}

// List returns the fresh entries at now with the given role (0: every
// role), sorted by node id.
func (dir *Directory) List(now time.Time, role Role) []Entry {
	var out []Entry
	for _, e := range dir.nodes {
		if (role == 0 || e.Role == role) && now.Sub(e.Heard) < dir.staleness {
			c := *e
			c.Addrs = slices.Clone(e.Addrs)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmpKey(a.Node, b.Node) })
	return out
}

// Len is the number of entries (fresh or not yet collected).
func (dir *Directory) Len() int { return len(dir.nodes) }

func cmpKey(a, b key.PublicKey) int {
	x, y := a.Bytes(), b.Bytes()
	return slices.Compare(x[:], y[:])
}
