package metadata

// Transaction coordinator state (issues #16 and #18): the coordinator (package broker/txn)
// runs on the quorum leader and makes each transactional id's complete new state durable
// as a PutTxn command, so a new leader rebuilds every transaction, including those in
// flight, from the applied state (Txns). The record bytes are broker/txn's record encoding,
// opaque here (metadata does not import broker/txn): the state keeps the latest record per
// transactional id, and a PutTxn without a record removes the id.

import (
	"slices"

	"github.com/meshkafka/meshkafka/internal/postcard"
)

// Transaction coordinator state: kinds 50–54.
const kindPutTxn = 50

// sectionTxns is the tag of the snapshot section of transaction coordinator state: count,
// then (transactional id, record) in ascending id order.
const sectionTxns = 12

// MaxTxnRecord bounds one transactional id's record (a transaction with thousands of
// partitions stays far below it).
const MaxTxnRecord = 1 << 20

// PutTxn sets the coordinator's record of one transactional id (Record empty: remove it).
// Result: *PutTxnResult.
type PutTxn struct {
	ID     string
	Record []byte
}

// PutTxnResult is the result of PutTxn: Code is CodeInvalidRequest for an empty id or an
// oversized record (nothing changes), else 0.
type PutTxnResult struct{ Code int16 }

func (*PutTxn) kind() uint64 { return kindPutTxn }
func (c *PutTxn) appendFields(b []byte) []byte {
	b = postcard.AppendString(b, c.ID)
	return postcard.AppendBytes(b, c.Record)
}

// decodeTxn decodes the transaction command of kind k (ok false: not one).
func decodeTxn(d *dec, k uint64) (Command, bool) {
	if k != kindPutTxn {
		return nil, false
	}
	return &PutTxn{ID: d.str(), Record: d.bytes()}, true
}

func (s *State) putTxn(c *PutTxn, dry bool) *PutTxnResult {
	if c.ID == "" || len(c.Record) > MaxTxnRecord {
		return &PutTxnResult{Code: CodeInvalidRequest}
	}
	if !dry {
		if len(c.Record) == 0 {
			delete(s.txns, c.ID)
		} else {
			s.txns[c.ID] = slices.Clone(c.Record)
		}
	}
	return &PutTxnResult{}
}

// Txns returns the coordinator's record of every transactional id (copies), by id.
func (s *State) Txns() map[string][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string][]byte, len(s.txns))
	for id, r := range s.txns {
		out[id] = slices.Clone(r)
	}
	return out
}

// appendTxns appends the section body, or returns nil without transactional ids.
func (s *State) appendTxns(b []byte) []byte {
	return appendSectionByKey(b, s.txns, postcard.AppendBytes)
}

// restoreTxns reads the section appendTxns writes into s.
func restoreTxns(d *dec, s *State, check func(bool, string, ...any)) {
	n := d.count(2)
	check(n > 0, "empty section (a state without transactions has none)")
	prev := ""
	for i := range n {
		id, rec := d.str(), d.bytes()
		if d.err != nil {
			return
		}
		check(id != "" && (i == 0 || id > prev), "transactional id %q empty or not in ascending order", id)
		check(len(rec) > 0 && len(rec) <= MaxTxnRecord, "transactional id %q: record of %d bytes", id, len(rec))
		if d.err != nil {
			return
		}
		prev, s.txns[id] = id, slices.Clone(rec)
	}
}
