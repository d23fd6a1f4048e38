package metadata

// Share-group coordinator state (KIP-932, issue #18): the share coordinator (package
// broker/share) runs on the quorum leader's broker and makes each change of its state durable
// as a PutShares command (one per coordinator call, every record of that call), so a new
// leader rebuilds every share group, its share partitions' start offsets and their in-flight
// records from the applied state (Shares). The record bytes are broker/share's record
// encoding, opaque here (metadata does not import broker/share): the state keeps the latest
// record per (group, key), a ShareItem without a record removes its key, and one with
// DropGroup removes the group's whole state.

import (
	"slices"

	"github.com/meshkafka/meshkafka/internal/postcard"
)

// Share-group coordinator state: kinds 55–59.
const kindPutShares = 55

// sectionShares is the tag of the snapshot section of share-group state: count of groups,
// then per group in ascending name order: group, count, (key, record) in ascending key order.
const sectionShares = 13

// MaxShareRecord bounds one record (a share partition's window of at most a few thousand
// runs stays far below it).
const MaxShareRecord = 1 << 20

// ShareItem is one change of a share group's state: Record (the latest for Key within the
// group; empty: remove Key), or DropGroup (remove every key of the group; Key and Record
// unused).
type ShareItem struct {
	Group     string
	Key       string
	Record    []byte
	DropGroup bool
}

// PutShares applies Items in order. Result: *PutSharesResult.
type PutShares struct{ Items []ShareItem }

// PutSharesResult is the result of PutShares: Code is CodeInvalidRequest when an item has an
// empty group, an empty key (without DropGroup) or an oversized record (nothing changes),
// else 0.
type PutSharesResult struct{ Code int16 }

func (*PutShares) kind() uint64 { return kindPutShares }
func (c *PutShares) appendFields(b []byte) []byte {
	b = postcard.AppendUvarint(b, uint64(len(c.Items)))
	for _, it := range c.Items {
		b = postcard.AppendString(b, it.Group)
		b = postcard.AppendString(b, it.Key)
		b = postcard.AppendBytes(b, it.Record)
		b = postcard.AppendBool(b, it.DropGroup)
	}
	return b
}

// decodeShares decodes the share command of kind k (ok false: not one).
func decodeShares(d *dec, k uint64) (Command, bool) {
	if k != kindPutShares {
		return nil, false
	}
	c := &PutShares{}
	n := d.count(4)
	for range n {
		c.Items = append(c.Items, ShareItem{Group: d.str(), Key: d.str(), Record: d.bytes(), DropGroup: d.bool()})
	}
	return c, true
}

func (s *State) putShares(c *PutShares, dry bool) *PutSharesResult {
	for _, it := range c.Items {
		if it.Group == "" || (!it.DropGroup && it.Key == "") || len(it.Record) > MaxShareRecord {
			return &PutSharesResult{Code: CodeInvalidRequest}
		}
	}
	if dry {
		return &PutSharesResult{}
	}
	for _, it := range c.Items {
		g := s.shares[it.Group]
		switch {
		case it.DropGroup:
			delete(s.shares, it.Group)
		case len(it.Record) == 0:
			delete(g, it.Key)
			if len(g) == 0 {
				delete(s.shares, it.Group)
			}
		default:
			if g == nil {
				g = map[string][]byte{}
				s.shares[it.Group] = g
			}
			g[it.Key] = slices.Clone(it.Record)
		}
	}
	return &PutSharesResult{}
}

// Shares returns every share group's records by key (copies), by group.
func (s *State) Shares() map[string]map[string][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]map[string][]byte, len(s.shares))
	for grp, keys := range s.shares {
		m := make(map[string][]byte, len(keys))
		for k, r := range keys {
			m[k] = slices.Clone(r)
		}
		out[grp] = m
	}
	return out
}

// appendShares appends the section body, or returns nil without share-group state.
func (s *State) appendShares(b []byte) []byte {
	return appendSectionByKey(b, s.shares, func(b []byte, keys map[string][]byte) []byte {
		return appendByKey(b, keys, postcard.AppendBytes)
	})
}

// restoreShares reads the section appendShares writes into s.
func restoreShares(d *dec, s *State, check func(bool, string, ...any)) {
	n := d.count(2)
	check(n > 0, "empty section (a state without share groups has none)")
	prevGroup := ""
	for i := range n {
		grp := d.str()
		m := d.count(2)
		if d.err != nil {
			return
		}
		check(grp != "" && (i == 0 || grp > prevGroup), "share group %q empty or not in ascending order", grp)
		check(m > 0, "share group %q without records", grp)
		keys := map[string][]byte{}
		prevKey := ""
		for j := range m {
			k, rec := d.str(), d.bytes()
			if d.err != nil {
				return
			}
			check(k != "" && (j == 0 || k > prevKey), "share group %q: key %q empty or not in ascending order", grp, k)
			check(len(rec) > 0 && len(rec) <= MaxShareRecord, "share group %q key %q: record of %d bytes", grp, k, len(rec))
			if d.err != nil {
				return
			}
			prevKey, keys[k] = k, slices.Clone(rec)
		}
		prevGroup, s.shares[grp] = grp, keys
	}
}
