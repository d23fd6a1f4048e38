package controller

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/meshkafka/meshkafka/broker/share"
	"github.com/meshkafka/meshkafka/broker/share/coord"
)

// Share-group state on the quorum (issue #18).
//
// Decision: like the transaction coordinator's (txn.go), the share coordinator's durable
// state lives on the metadata quorum, so that a new leader serves every share group from where
// the lost one left it: share-partition start offsets, in-flight records with their delivery
// counts, group configs. Each coordinator call's records (broker/share Records, each the
// complete new state of its key) are one PutShares proposal, answered once applied; the
// metadata state keeps the latest record per (group, key) (snapshot section 13). Keys: "g"
// (the group), "c" (its configs), "p" NUL topic NUL partition (a share partition); a group's
// deletion drops all of them. Acquisitions are not written (broker/share's doc): records
// acquired on the old leader are delivered again by the new one, with the delivery count of
// their last written state. The coordinator belongs to one leadership (leaderBound) and is
// rebuilt from the applied records after a failed proposal, as the transaction coordinator is.

// shareState is the optional part of a Replica that holds the share coordinator's records.
type shareState interface {
	Shares() map[string]map[string][]byte
}

// Shares implements shareState.
func (q *QuorumReplica) Shares() map[string]map[string][]byte { return q.sm.st.Shares() }

// shareKey is the key of a share record within its group ("" for a group deletion).
func shareKey(r *share.Record) string {
	switch r.Kind {
	case share.KindGroup:
		return "g"
	case share.KindConfig:
		return "c"
	case share.KindPartition, share.KindDeletePartition:
		return "p\x00" + r.Topic + "\x00" + strconv.FormatInt(int64(r.Partition), 10)
	}
	return ""
}

// shareItems is the PutShares command that makes recs durable.
func shareItems(recs []*share.Record) *metadata.PutShares {
	c := &metadata.PutShares{}
	for _, r := range recs {
		switch r.Kind {
		case share.KindDeleteGroup:
			c.Items = append(c.Items, metadata.ShareItem{Group: r.Group, DropGroup: true})
		case share.KindDeletePartition:
			c.Items = append(c.Items, metadata.ShareItem{Group: r.Group, Key: shareKey(r)})
		default:
			c.Items = append(c.Items, metadata.ShareItem{Group: r.Group, Key: shareKey(r), Record: share.AppendRecord(nil, r)})
		}
	}
	return c
}

// shareRecords decodes the quorum's share state into the records a coordinator replays: per
// group (in name order) its group record, its configs, then its partitions. A record that
// does not decode (or does not belong to its key) is left out and reported in errs.
func shareRecords(state map[string]map[string][]byte) (recs []*share.Record, errs []error) {
	for _, grp := range slices.Sorted(maps.Keys(state)) {
		keys := slices.Sorted(maps.Keys(state[grp]))
		slices.SortStableFunc(keys, func(a, b string) int { return shareKeyRank(a) - shareKeyRank(b) })
		for _, k := range keys {
			r, err := share.DecodeRecord(state[grp][k])
			if err == nil && (r.Group != grp || shareKey(r) != k) {
				err = fmt.Errorf("record of group %q key %q under group %q key %q", r.Group, shareKey(r), grp, k)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("share group %q key %q: %w", grp, strings.ReplaceAll(k, "\x00", "/"), err))
				continue
			}
			recs = append(recs, r)
		}
	}
	return recs, errs
}

// shareKeyRank orders a group's keys for replay: the group, its configs, its partitions.
func shareKeyRank(k string) int {
	switch k {
	case "g":
		return 0
	case "c":
		return 1
	}
	return 2
}

// quorumShareJournal is the share coordinator's Journal on the quorum: each Append one
// PutShares proposal. After a failed proposal (its outcome is unknown) gone is closed and the
// coordinator is rebuilt from the quorum's state.
type quorumShareJournal struct {
	c    *Controller
	gone chan struct{}
	once sync.Once
}

func (j *quorumShareJournal) Append(recs ...*share.Record) error {
	if len(recs) == 0 {
		return nil
	}
	ctx, cancel := j.c.opContext()
	defer cancel()
	res, err := j.c.r.Do(ctx, MetaCommand{shareItems(recs)})
	if err == nil {
		if r, ok := res.(*metadata.PutSharesResult); ok && r.Code != 0 {
			err = fmt.Errorf("controller: PutShares: Kafka error %d", r.Code)
		}
	}
	if err != nil {
		j.once.Do(func() { close(j.gone) })
	}
	return err
}

// MaybeCompact: the metadata state keeps one record per key, raft snapshots compact the log.
func (j *quorumShareJournal) MaybeCompact(func() []*share.Record) error { return nil }
func (j *quorumShareJournal) Close() error                              { return nil }

// startShareCoordinator starts the share coordinator from the quorum's records (after a
// ReadBarrier) if this node leads and no live one runs; a stale one is stopped first.
func (c *Controller) startShareCoordinator() {
	c.shareMu.Lock()
	defer c.shareMu.Unlock()
	changed, ok := startingIn(c, &c.shareCo, c.stopShareLocked, "share coordinator")
	if !ok {
		return
	}
	var recs []*share.Record
	if ss, ok := c.r.(shareState); ok {
		var errs []error
		recs, errs = shareRecords(ss.Shares())
		for _, err := range errs {
			// Never dropped silently: the operator is told.
			c.log.Error("share coordinator: undecodable record on the quorum", "err", err)
		}
	}
	gone := make(chan struct{})
	j := &quorumShareJournal{c: c, gone: gone}
	co := coord.New(coord.Config{Logger: c.cfg.Logger, Now: c.clk.Now, Machine: c.b.ShareConfig()}, j, recs)
	setIn(c, &c.shareCo, co, gone, changed)
	c.b.SetShareCoordinator(co)
	c.log.Info("share coordinator started", "records", len(recs))
}

// liveShare is the running share coordinator if it is still valid, else nil.
func (c *Controller) liveShare() *coord.Coordinator { return liveIn(c, &c.shareCo) }

// stopShareCoordinator stops the share coordinator, if one runs.
func (c *Controller) stopShareCoordinator() {
	c.shareMu.Lock()
	defer c.shareMu.Unlock()
	c.stopShareLocked()
}

func (c *Controller) stopShareLocked() {
	stopIn(c, &c.shareCo, func() { c.b.SetShareCoordinator(nil) })
}

// shareCoordinator is the live share coordinator, started (or rebuilt) here if this node
// leads and none is live; nil if this node does not lead.
func (c *Controller) shareCoordinator() *coord.Coordinator {
	return ensureLive(c, &c.shareCo, c.startShareCoordinator, c.stopShareCoordinator)
}
