package broker

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/share"
)

// Group configs (Kafka's GROUP config resource, type 32) for share groups: DescribeConfigs
// and IncrementalAlterConfigs of a group resource are served by the share coordinator,
// which keeps them durably with the group. The configs are Kafka 4.1's share-group ones;
// any other name is INVALID_CONFIG. A group config not set reports the broker's value
// (source DEFAULT_CONFIG). With a metadata quorum only the leader's broker serves them
// (the share coordinator's home; the controller's config ops handle topics).

type groupConfigDef struct {
	name  string
	typ   int8
	valid func(string) bool
	def   func(share.Config) string
}

func positiveInt(v string) bool {
	n, err := strconv.ParseInt(v, 10, 32)
	return err == nil && n > 0
}

func ms(d time.Duration) string { return strconv.FormatInt(int64(d/time.Millisecond), 10) }

var groupConfigDefs = []groupConfigDef{
	{"share.auto.offset.reset", brokerop.ConfigTypeString, func(v string) bool { return v == "latest" || v == "earliest" }, func(c share.Config) string { return c.AutoOffsetReset }},
	{"share.delivery.count.limit", brokerop.ConfigTypeInt, func(v string) bool {
		n, err := strconv.Atoi(v)
		return err == nil && n >= 2 && n <= 10
	}, func(c share.Config) string { return strconv.Itoa(int(c.DeliveryLimit)) }},
	{"share.heartbeat.interval.ms", brokerop.ConfigTypeInt, positiveInt, func(c share.Config) string { return ms(c.HeartbeatInterval) }},
	{"share.isolation.level", brokerop.ConfigTypeString, func(v string) bool { return v == "read_uncommitted" || v == "read_committed" },
		func(share.Config) string { return "read_uncommitted" }},
	{"share.record.lock.duration.ms", brokerop.ConfigTypeInt, positiveInt, func(c share.Config) string { return ms(c.LockDuration) }},
	{"share.session.timeout.ms", brokerop.ConfigTypeInt, positiveInt, func(c share.Config) string { return ms(c.SessionTimeout) }},
}

func lookupGroupConfig(name string) *groupConfigDef {
	for i := range groupConfigDefs {
		if groupConfigDefs[i].name == name {
			return &groupConfigDefs[i]
		}
	}
	return nil
}

// describeGroupConfigs answers DescribeConfigs for one group resource.
func (b *Broker) describeGroupConfigs(group string, names []string, docs bool) ([]brokerop.ConfigEntry, error) {
	var set map[string]string
	var cfg share.Config
	if err := b.shareCo().Do(func(m *share.Machine, _ time.Time) { set, cfg = m.Configs(group), m.Config() }); err != nil {
		return nil, err
	}
	var out []brokerop.ConfigEntry
	for _, d := range groupConfigDefs {
		if len(names) > 0 && !slices.Contains(names, d.name) {
			continue
		}
		e := brokerop.ConfigEntry{Name: d.name, ConfigType: d.typ}
		if v, ok := set[d.name]; ok {
			e.Value, e.Source = &v, brokerop.SourceGroupConfig
		} else {
			v := d.def(cfg)
			e.Value, e.Source, e.IsDefault = &v, brokerop.SourceDefault, true
		}
		if docs {
			e.Documentation = "KIP-932 share-group config " + d.name
		}
		out = append(out, e)
	}
	return out, nil
}

// describeWithGroups serves the group resources of a DescribeConfigs itself and the others
// with the topic and broker path.
func (b *Broker) describeWithGroups(ctx context.Context, req *brokerop.DescribeConfigsReq) (*brokerop.DescribeConfigsResp, error) {
	rs, err := withGroupResources(req.Resources, func(r brokerop.DescribeConfigsResource) int8 { return r.Type },
		func(rest []brokerop.DescribeConfigsResource) ([]brokerop.DescribeConfigsResourceResp, error) {
			r, err := b.DescribeConfigs(ctx, &brokerop.DescribeConfigsReq{Resources: rest, IncludeSynonyms: req.IncludeSynonyms, IncludeDocumentation: req.IncludeDocumentation})
			if err != nil {
				return nil, err
			}
			return r.Resources, nil
		},
		func(rs brokerop.DescribeConfigsResource) brokerop.DescribeConfigsResourceResp {
			r := brokerop.DescribeConfigsResourceResp{Type: rs.Type, Name: rs.Name}
			if rs.Name == "" {
				r.ErrorCode, r.ErrorMessage = kerr.InvalidGroupID.Code, "a group config resource needs a group id"
			} else if cfgs, err := b.describeGroupConfigs(rs.Name, rs.ConfigNames, req.IncludeDocumentation); err != nil {
				r.ErrorCode = kerr.CoordinatorNotAvailable.Code
			} else {
				r.Configs = cfgs
			}
			return r
		})
	if err != nil {
		return nil, err
	}
	return &brokerop.DescribeConfigsResp{Resources: rs}, nil
}

// incrementalWithGroups serves the group resources of an IncrementalAlterConfigs (SET and
// DELETE; a group config is not a list) and the others with the topic path.
func (b *Broker) incrementalWithGroups(ctx context.Context, req *brokerop.IncrementalAlterConfigsReq) (*brokerop.AlterConfigsResp, error) {
	rs, err := withGroupResources(req.Resources, func(r brokerop.IncrementalAlterConfigsResource) int8 { return r.Type },
		func(rest []brokerop.IncrementalAlterConfigsResource) ([]brokerop.AlterConfigsResourceResp, error) {
			r, err := b.IncrementalAlterConfigs(ctx, &brokerop.IncrementalAlterConfigsReq{Resources: rest, ValidateOnly: req.ValidateOnly})
			if err != nil {
				return nil, err
			}
			return r.Resources, nil
		},
		func(rs brokerop.IncrementalAlterConfigsResource) brokerop.AlterConfigsResourceResp {
			r := brokerop.AlterConfigsResourceResp{Type: rs.Type, Name: rs.Name}
			r.ErrorCode, r.ErrorMessage = b.alterGroupConfigs(rs, req.ValidateOnly)
			return r
		})
	if err != nil {
		return nil, err
	}
	return &brokerop.AlterConfigsResp{Resources: rs}, nil
}

// withGroupResources answers a config request's resources in order: the group-config ones
// each with group, all the others in one call to others (which answers them in order).
func withGroupResources[Rq, Rs any](reqs []Rq, typeOf func(Rq) int8, others func([]Rq) ([]Rs, error), group func(Rq) Rs) ([]Rs, error) {
	var rest []Rq
	for _, r := range reqs {
		if typeOf(r) != brokerop.ResourceGroupConfig {
			rest = append(rest, r)
		}
	}
	var answered []Rs
	if len(rest) > 0 {
		var err error
		if answered, err = others(rest); err != nil {
			return nil, err
		}
		if len(answered) != len(rest) {
			return nil, fmt.Errorf("config request: %d answers for %d resources", len(answered), len(rest))
		}
	}
	out := make([]Rs, 0, len(reqs))
	k := 0
	for _, r := range reqs {
		if typeOf(r) != brokerop.ResourceGroupConfig {
			out = append(out, answered[k])
			k++
			continue
		}
		out = append(out, group(r))
	}
	return out, nil
}

// alterGroupConfigs checks every change of one group resource, then applies them all
// (durably) unless validateOnly.
func (b *Broker) alterGroupConfigs(rs brokerop.IncrementalAlterConfigsResource, validateOnly bool) (int16, string) {
	if rs.Name == "" {
		return kerr.InvalidGroupID.Code, "a group config resource needs a group id"
	}
	seen := map[string]bool{}
	for _, c := range rs.Configs {
		if seen[c.Name] {
			return kerr.InvalidRequest.Code, fmt.Sprintf("Error due to duplicate config keys: %s", c.Name)
		}
		seen[c.Name] = true
		d := lookupGroupConfig(c.Name)
		if d == nil {
			return kerr.InvalidConfig.Code, fmt.Sprintf("Unknown group config name: %s", c.Name)
		}
		switch c.Op {
		case brokerop.ConfigOpSet:
			if c.Value == nil || !d.valid(*c.Value) {
				return kerr.InvalidConfig.Code, fmt.Sprintf("Invalid value for group config %s", c.Name)
			}
		case brokerop.ConfigOpDelete:
		default:
			return kerr.InvalidConfig.Code, fmt.Sprintf("Config operation %d is not allowed for group config %s", c.Op, c.Name)
		}
	}
	if validateOnly {
		return 0, ""
	}
	err := b.shareCo().Do(func(m *share.Machine, _ time.Time) {
		for _, c := range rs.Configs {
			if c.Op == brokerop.ConfigOpDelete {
				m.SetConfig(rs.Name, c.Name, nil)
			} else {
				m.SetConfig(rs.Name, c.Name, c.Value)
			}
		}
	})
	if err != nil {
		return kerr.CoordinatorNotAvailable.Code, "the group's configs could not be stored"
	}
	return 0, ""
}

func hasGroupResource[T any](rs []T, typ func(T) int8) bool {
	return slices.ContainsFunc(rs, func(r T) bool { return typ(r) == brokerop.ResourceGroupConfig })
}
