package gateway

import (
	"context"
	"sync"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// topicIDCache maps topic ids to names (and back) for the API versions that address topics
// by id. It is filled from Backend.Metadata answers and refreshed on a miss.
type topicIDCache struct {
	backend Backend

	mu      sync.Mutex
	byID    map[[16]byte]string // guarded by mu
	byName  map[string][16]byte // guarded by mu
	cluster string              // guarded by mu
}

// observe records the topics (and cluster id) of a Metadata answer.
func (c *topicIDCache) observe(resp *brokerop.MetadataResp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byID, c.byName = map[[16]byte]string{}, map[string][16]byte{}
	}
	if resp.ClusterID != "" {
		c.cluster = resp.ClusterID
	}
	for _, t := range resp.Topics {
		if t.ErrorCode != 0 || t.TopicID == ([16]byte{}) {
			continue
		}
		if old, ok := c.byName[t.Name]; ok && old != t.TopicID {
			delete(c.byID, old) // the topic was deleted and created again
		}
		c.byID[t.TopicID] = t.Name
		c.byName[t.Name] = t.TopicID
	}
}

// forget drops a deleted topic, so its old id stops resolving at once.
func (c *topicIDCache) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.byName[name]; ok {
		delete(c.byID, id)
		delete(c.byName, name)
	}
}

func (c *topicIDCache) clusterID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cluster
}

func (c *topicIDCache) lookup(id [16]byte) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.byID[id]
	return n, ok
}

// names resolves ids to names, refreshing the cache once from the backend when any id is
// unknown. Unknown ids map to "".
func (c *topicIDCache) names(ctx context.Context, ids [][16]byte) []string {
	out := make([]string, len(ids))
	missing := false
	for i, id := range ids {
		n, ok := c.lookup(id)
		out[i], missing = n, missing || !ok
	}
	if !missing {
		return out
	}
	if resp, err := c.backend.Metadata(ctx, &brokerop.MetadataReq{}); err == nil {
		c.observe(resp)
	}
	for i, id := range ids {
		if out[i] == "" {
			out[i], _ = c.lookup(id)
		}
	}
	return out
}
