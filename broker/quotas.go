package broker

// Client quotas (DescribeClientQuotas, AlterClientQuotas): stored here, enforced by the
// gateways (package gateway reads them with DescribeClientQuotas and throttles produce and
// fetch byte rates).
//
// A broker of a cluster (package broker/controller, -quorum-seeds) keeps them on the metadata
// quorum instead, with the same rules (DescribeClientQuotasOf, AlterClientQuotasOf). Alone
// they live in Dir/client_quotas, replaced atomically (temp file, fsync, rename, fsync dir)
// by every AlterClientQuotas that changes something:
//
//	crc32c(json) uint32 big-endian | json: [{"entity":[{"type":"user","name":"alice"}],"values":{"producer_byte_rate":1024}}]
//
// Entities are user and client-id, alone or together (a missing name is the default
// entity); keys are Kafka's producer_byte_rate, consumer_byte_rate, request_percentage and
// controller_mutation_rate, each a positive finite number. IP quotas
// (connection_creation_rate) are refused with INVALID_REQUEST: we do not enforce them.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/wal"
)

const quotasFile = "client_quotas"

// quotaKeys are the quota keys accepted for user and client-id entities.
var quotaKeys = map[string]bool{
	"producer_byte_rate": true, "consumer_byte_rate": true,
	"request_percentage": true, "controller_mutation_rate": true,
}

// quotaStore holds the client quotas, loaded from Dir/client_quotas on first use.
type quotaStore struct {
	mu      sync.Mutex
	loaded  bool                   // guarded by mu
	entries map[string]*quotaEntry // by entityKey; guarded by mu
}

// quotaEntry is one entity's quotas, as stored in the file.
type quotaEntry struct {
	Entity []quotaPart        `json:"entity"`
	Values map[string]float64 `json:"values"`
}

type quotaPart struct {
	Type string  `json:"type"`
	Name *string `json:"name,omitempty"`
}

// entityKey is the canonical text of an entity (parts sorted by type).
func entityKey(parts []quotaPart) string {
	var sb strings.Builder
	for _, p := range parts {
		sb.WriteString(p.Type)
		if p.Name == nil {
			sb.WriteString("\x00d")
		} else {
			sb.WriteString("\x00n")
			sb.WriteString(*p.Name)
		}
		sb.WriteByte('\x01')
	}
	return sb.String()
}

var errBadQuotas = errors.New("broker: corrupt client_quotas file")

func encodeQuotas(m map[string]*quotaEntry) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]*quotaEntry, 0, len(keys))
	for _, k := range keys {
		list = append(list, m[k])
	}
	js, _ := json.Marshal(list) // plain structs and finite floats: cannot fail
	return append(binary.BigEndian.AppendUint32(nil, crc32.Checksum(js, crc32c)), js...)
}

// decodeQuotas reads the client_quotas file; every entry must be valid as AlterClientQuotas
// would have stored it.
func decodeQuotas(b []byte) (map[string]*quotaEntry, error) {
	if len(b) < 4 || crc32.Checksum(b[4:], crc32c) != binary.BigEndian.Uint32(b) {
		return nil, errBadQuotas
	}
	var list []*quotaEntry
	if err := json.Unmarshal(b[4:], &list); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadQuotas, err)
	}
	m := make(map[string]*quotaEntry, len(list))
	for _, e := range list {
		if e == nil || len(e.Values) == 0 {
			return nil, fmt.Errorf("%w: empty entry", errBadQuotas)
		}
		parts, msg := normalizeEntity(e.Entity)
		if msg != "" {
			return nil, fmt.Errorf("%w: %s", errBadQuotas, msg)
		}
		for k, v := range e.Values {
			if msg := checkQuotaValue(k, v); msg != "" {
				return nil, fmt.Errorf("%w: %s", errBadQuotas, msg)
			}
		}
		e.Entity = parts
		m[entityKey(parts)] = e
	}
	return m, nil
}

// normalizeEntity checks an entity and sorts its parts by type.
func normalizeEntity(in []quotaPart) ([]quotaPart, string) {
	if len(in) == 0 {
		return nil, "empty quota entity"
	}
	parts := append([]quotaPart(nil), in...)
	sort.Slice(parts, func(i, j int) bool { return parts[i].Type < parts[j].Type })
	for i, p := range parts {
		switch p.Type {
		case brokerop.QuotaEntityUser, brokerop.QuotaEntityClientID:
		case brokerop.QuotaEntityIP:
			return nil, "ip quotas (connection_creation_rate) are not supported"
		default:
			return nil, fmt.Sprintf("unknown quota entity type %q", p.Type)
		}
		if i > 0 && parts[i-1].Type == p.Type {
			return nil, fmt.Sprintf("duplicate quota entity type %q", p.Type)
		}
	}
	return parts, ""
}

func checkQuotaValue(key string, v float64) string {
	if !quotaKeys[key] {
		return fmt.Sprintf("unknown quota key %q", key)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return fmt.Sprintf("quota %s must be a positive number, not %v", key, v)
	}
	return ""
}

// loadLocked reads the file on first use. Callers hold q.mu.
func (b *Broker) loadQuotasLocked() error {
	q := &b.quotas
	if q.loaded {
		return nil
	}
	buf, ok, err := readSmallFile(b.fs, filepath.Join(b.cfg.Dir, quotasFile), 64<<20)
	if err != nil {
		return err
	}
	q.entries = map[string]*quotaEntry{}
	if ok {
		if q.entries, err = decodeQuotas(buf); err != nil {
			return err
		}
	}
	q.loaded = true
	return nil
}

func toParts(in []brokerop.QuotaEntityPart) []quotaPart {
	out := make([]quotaPart, len(in))
	for i, p := range in {
		out[i] = quotaPart{Type: p.Type, Name: p.Name}
	}
	return out
}

func fromParts(in []quotaPart) []brokerop.QuotaEntityPart {
	out := make([]brokerop.QuotaEntityPart, len(in))
	for i, p := range in {
		out[i] = brokerop.QuotaEntityPart{Type: p.Type, Name: p.Name}
	}
	return out
}

// DescribeClientQuotas lists the entities matching every filter component, with their
// quotas. Strict asks for entities with no parts beyond the components' types.
func (b *Broker) DescribeClientQuotas(ctx context.Context, req *brokerop.DescribeClientQuotasReq) (*brokerop.DescribeClientQuotasResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.DescribeClientQuotasResp{}
	if resp.ErrorCode, resp.ErrorMessage = checkQuotaFilter(req); resp.ErrorCode != 0 {
		return resp, nil
	}
	q := &b.quotas
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := b.loadQuotasLocked(); err != nil {
		b.log.Error("broker: client quotas", "err", err)
		resp.ErrorCode, resp.ErrorMessage = kerr.KafkaStorageError.Code, "reading the stored client quotas failed"
		return resp, nil
	}
	describeQuotas(q.entries, req, resp)
	return resp, nil
}

// describeQuotas fills resp with the entries matching req (sorted by entity key).
func describeQuotas(entries map[string]*quotaEntry, req *brokerop.DescribeClientQuotasReq, resp *brokerop.DescribeClientQuotasResp) {
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e := entries[k]
		if !quotaMatches(e.Entity, req.Components, req.Strict) {
			continue
		}
		entry := brokerop.QuotaEntry{Entity: fromParts(e.Entity)}
		names := make([]string, 0, len(e.Values))
		for n := range e.Values {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			entry.Values = append(entry.Values, brokerop.QuotaValue{Key: n, Value: strconv.FormatFloat(e.Values[n], 'g', -1, 64)})
		}
		resp.Entries = append(resp.Entries, entry)
	}
}

// checkQuotaFilter validates a DescribeClientQuotas filter (INVALID_REQUEST and a message).
func checkQuotaFilter(req *brokerop.DescribeClientQuotasReq) (int16, string) {
	seen := map[string]bool{}
	for _, c := range req.Components {
		if seen[c.EntityType] {
			return kerr.InvalidRequest.Code, fmt.Sprintf("duplicate filter component entity type %q", c.EntityType)
		}
		seen[c.EntityType] = true
		if c.MatchType < brokerop.QuotaMatchExact || c.MatchType > brokerop.QuotaMatchAny || (c.MatchType == brokerop.QuotaMatchExact && c.Match == nil) {
			return kerr.InvalidRequest.Code, fmt.Sprintf("invalid filter component for %q", c.EntityType)
		}
	}
	return 0, ""
}

func quotaMatches(entity []quotaPart, comps []brokerop.QuotaFilterComponent, strict bool) bool {
	if strict && len(entity) != len(comps) {
		return false
	}
	for _, c := range comps {
		found := false
		for _, p := range entity {
			if p.Type != c.EntityType {
				continue
			}
			switch c.MatchType {
			case brokerop.QuotaMatchExact:
				found = p.Name != nil && *p.Name == *c.Match
			case brokerop.QuotaMatchDefault:
				found = p.Name == nil
			default:
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// AlterClientQuotas sets and removes quotas. Each entity is checked on its own (an invalid
// one answers INVALID_REQUEST and changes nothing of it); the valid changes are stored with
// one file write before the answer, and a failed write answers KAFKA_STORAGE_ERROR for every
// entity and changes nothing.
func (b *Broker) AlterClientQuotas(ctx context.Context, req *brokerop.AlterClientQuotasReq) (*brokerop.AlterClientQuotasResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.AlterClientQuotasResp{Entries: make([]brokerop.AlterClientQuotasEntryResp, len(req.Entries))}
	q := &b.quotas
	q.mu.Lock()
	defer q.mu.Unlock()
	fail := func(code int16, msg string) *brokerop.AlterClientQuotasResp {
		for i := range resp.Entries {
			resp.Entries[i] = brokerop.AlterClientQuotasEntryResp{ErrorCode: code, ErrorMessage: msg, Entity: req.Entries[i].Entity}
		}
		return resp
	}
	if err := b.loadQuotasLocked(); err != nil {
		b.log.Error("broker: client quotas", "err", err)
		return fail(kerr.KafkaStorageError.Code, "reading the stored client quotas failed"), nil
	}
	next, changed := planQuotas(q.entries, req, resp)
	if !changed {
		return resp, nil
	}
	if err := writeFileAtomic(b.fs, filepath.Join(b.cfg.Dir, quotasFile), encodeQuotas(next)); err != nil {
		b.log.Error("broker: write client quotas", "err", err)
		return fail(kerr.KafkaStorageError.Code, "storing the client quotas failed"), nil
	}
	q.entries = next
	return resp, nil
}

// planQuotas checks req's entries against entries (each on its own: an invalid one answers
// INVALID_REQUEST in resp and changes nothing of it) and returns the quotas after the valid
// changes, and whether anything changed (never with ValidateOnly). entries is not modified.
func planQuotas(entries map[string]*quotaEntry, req *brokerop.AlterClientQuotasReq, resp *brokerop.AlterClientQuotasResp) (map[string]*quotaEntry, bool) {
	next := make(map[string]*quotaEntry, len(entries))
	for k, e := range entries {
		next[k] = e
	}
	changed := false
	for i, ent := range req.Entries {
		r := &resp.Entries[i]
		r.Entity = ent.Entity
		parts, msg := normalizeEntity(toParts(ent.Entity))
		values := map[string]float64{}
		key := entityKey(parts)
		if msg == "" {
			if old := next[key]; old != nil {
				for k, v := range old.Values {
					values[k] = v
				}
			}
			seenKey := map[string]bool{}
			for _, op := range ent.Ops {
				if seenKey[op.Key] {
					msg = fmt.Sprintf("quota key %q changed twice", op.Key)
					break
				}
				seenKey[op.Key] = true
				if op.Remove {
					if !quotaKeys[op.Key] {
						msg = fmt.Sprintf("unknown quota key %q", op.Key)
						break
					}
					delete(values, op.Key)
					continue
				}
				v, err := strconv.ParseFloat(op.Value, 64)
				if err != nil {
					msg = fmt.Sprintf("quota %s: bad value %q", op.Key, op.Value)
					break
				}
				if msg = checkQuotaValue(op.Key, v); msg != "" {
					break
				}
				values[op.Key] = v
			}
		}
		if msg != "" {
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, msg
			continue
		}
		if req.ValidateOnly {
			continue
		}
		if len(values) == 0 {
			delete(next, key)
		} else {
			next[key] = &quotaEntry{Entity: parts, Values: values}
		}
		changed = true
	}
	return next, changed
}

// ClientQuota is one entity's client quotas, the form the metadata quorum keeps them in
// (package broker/controller): Entity sorted by type, Values by Kafka key.
type ClientQuota struct {
	Entity []brokerop.QuotaEntityPart
	Values map[string]float64
}

func quotaEntries(qs []ClientQuota) map[string]*quotaEntry {
	m := make(map[string]*quotaEntry, len(qs))
	for _, q := range qs {
		parts := toParts(q.Entity)
		m[entityKey(parts)] = &quotaEntry{Entity: parts, Values: q.Values}
	}
	return m
}

// DescribeClientQuotasOf answers a DescribeClientQuotas over qs, with the rules of
// Broker.DescribeClientQuotas.
func DescribeClientQuotasOf(qs []ClientQuota, req *brokerop.DescribeClientQuotasReq) *brokerop.DescribeClientQuotasResp {
	resp := &brokerop.DescribeClientQuotasResp{}
	if resp.ErrorCode, resp.ErrorMessage = checkQuotaFilter(req); resp.ErrorCode != 0 {
		return resp
	}
	describeQuotas(quotaEntries(qs), req, resp)
	return resp
}

// AlterClientQuotasOf checks an AlterClientQuotas against qs with the rules of
// Broker.AlterClientQuotas and returns the answer and the entities whose quotas change, with
// their new values (none: the entity is removed). Nothing is stored: the caller stores the
// changes and answers KAFKA_STORAGE_ERROR if that fails.
func AlterClientQuotasOf(qs []ClientQuota, req *brokerop.AlterClientQuotasReq) (*brokerop.AlterClientQuotasResp, []ClientQuota) {
	resp := &brokerop.AlterClientQuotasResp{Entries: make([]brokerop.AlterClientQuotasEntryResp, len(req.Entries))}
	old := quotaEntries(qs)
	next, changed := planQuotas(old, req, resp)
	if !changed {
		return resp, nil
	}
	var out []ClientQuota
	keys := make([]string, 0, len(next)+len(old))
	for k := range next {
		keys = append(keys, k)
	}
	for k := range old {
		if _, ok := next[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		o, n := old[k], next[k]
		switch {
		case n == nil:
			out = append(out, ClientQuota{Entity: fromParts(o.Entity)})
		case o == nil || !maps.Equal(o.Values, n.Values):
			out = append(out, ClientQuota{Entity: fromParts(n.Entity), Values: maps.Clone(n.Values)})
		}
	}
	return resp, out
}

// LoadClientQuotas reads the client quotas a broker keeps in dir (its client_quotas file;
// none: nil), for the metadata quorum to import them.
func LoadClientQuotas(fsys wal.FS, dir string) ([]ClientQuota, error) {
	buf, ok, err := readSmallFile(fsys, filepath.Join(dir, quotasFile), 64<<20)
	if err != nil || !ok {
		return nil, err
	}
	m, err := decodeQuotas(buf)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]ClientQuota, 0, len(keys))
	for _, k := range keys {
		out = append(out, ClientQuota{Entity: fromParts(m[k].Entity), Values: maps.Clone(m[k].Values)})
	}
	return out, nil
}
