package broker

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/twmb/franz-go/pkg/kerr"
)

var bg = context.Background()

func TestCreateTopicsValidation(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DefaultPartitions = 3 })
	e.create("exists", 1, nil)
	e.create("with.dot", 1, nil)
	long := strings.Repeat("a", 250)
	req := &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{
		{Name: "ok", NumPartitions: 2, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "3600000"}},
		{Name: "defaults", NumPartitions: -1, ReplicationFactor: -1},
		{Name: "exists", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "", NumPartitions: 1, ReplicationFactor: 1},
		{Name: ".", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "..", NumPartitions: 1, ReplicationFactor: 1},
		{Name: long, NumPartitions: 1, ReplicationFactor: 1},
		{Name: strings.Repeat("b", 249), NumPartitions: 1, ReplicationFactor: 1},
		{Name: "bad/char", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "with_dot", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "zero", NumPartitions: 0, ReplicationFactor: 1},
		{Name: "neg", NumPartitions: -2, ReplicationFactor: 1},
		{Name: "rf3", NumPartitions: 1, ReplicationFactor: 3},
		{Name: "rf0", NumPartitions: 1, ReplicationFactor: 0},
		{Name: "unknowncfg", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"foo.bar": "1"}},
		{Name: "badvalue", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "soon"}},
		{Name: "compact", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "compact,shred"}},
		{Name: "dup", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "dup", NumPartitions: 1, ReplicationFactor: 1},
	}}
	want := []int16{0, 0, kerr.TopicAlreadyExists.Code,
		kerr.InvalidTopicException.Code, kerr.InvalidTopicException.Code, kerr.InvalidTopicException.Code, kerr.InvalidTopicException.Code,
		0, kerr.InvalidTopicException.Code, kerr.InvalidTopicException.Code,
		kerr.InvalidPartitions.Code, kerr.InvalidPartitions.Code,
		kerr.InvalidReplicationFactor.Code, kerr.InvalidReplicationFactor.Code,
		kerr.InvalidConfig.Code, kerr.InvalidConfig.Code, kerr.InvalidConfig.Code,
		kerr.InvalidRequest.Code, kerr.InvalidRequest.Code}
	resp, err := e.b.CreateTopics(bg, req)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.Topics {
		if r.ErrorCode != want[i] {
			t.Errorf("%.20q: code %d (%s), want %d", r.Name, r.ErrorCode, r.ErrorMessage, want[i])
		}
		if r.ErrorCode != 0 && r.ErrorMessage == "" {
			t.Errorf("%.20q: error without message", r.Name)
		}
		if r.ErrorCode == 0 && r.TopicID == [16]byte{} {
			t.Errorf("%.20q: created without a topic id", r.Name)
		}
	}
	if r := resp.Topics[1]; r.NumPartitions != 3 || r.ReplicationFactor != 1 {
		t.Errorf("defaults: %d partitions rf %d, want 3 and 1", r.NumPartitions, r.ReplicationFactor)
	}
	if msg := resp.Topics[16].ErrorMessage; !strings.Contains(msg, "cleanup.policy") || !strings.Contains(msg, "one of: compact, delete") {
		t.Errorf("cleanup.policy message unclear: %q", msg)
	}
	if msg := resp.Topics[9].ErrorMessage; !strings.Contains(msg, "collides") {
		t.Errorf("collision message: %q", msg)
	}
	md, _ := e.b.Metadata(bg, &brokerop.MetadataReq{})
	var names []string
	for _, ti := range md.Topics {
		names = append(names, ti.Name)
	}
	wantNames := []string{strings.Repeat("b", 249), "defaults", "exists", "ok", "with.dot"}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("topics %v, want %v", names, wantNames)
	}
}

func TestCreateTopicsValidateOnly(t *testing.T) {
	e := newEnv(t)
	resp, _ := e.b.CreateTopics(bg, &brokerop.CreateTopicsReq{ValidateOnly: true, Topics: []brokerop.CreateTopic{
		{Name: "v", NumPartitions: 4, ReplicationFactor: 1}, {Name: "bad!", NumPartitions: 1, ReplicationFactor: 1}}})
	if resp.Topics[0].ErrorCode != 0 || resp.Topics[0].NumPartitions != 4 || resp.Topics[1].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("validate only: %+v", resp.Topics)
	}
	md, _ := e.b.Metadata(bg, &brokerop.MetadataReq{})
	if len(md.Topics) != 0 {
		t.Fatalf("validate only created %d topics", len(md.Topics))
	}
	if files := e.fs.Files(); slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, "/v-") }) {
		t.Fatalf("validate only wrote files: %v", files)
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DefaultPartitions = 4; c.NodeID = 7 })
	md, _ := e.b.Metadata(bg, &brokerop.MetadataReq{Topics: []string{"a", "a", "b!"}})
	if len(md.Topics) != 2 || md.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || md.Topics[1].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("no auto-create: %+v", md.Topics)
	}
	md, _ = e.b.Metadata(bg, &brokerop.MetadataReq{Topics: []string{"a", "b!"}, AutoCreate: true})
	a := md.Topics[0]
	if a.ErrorCode != 0 || len(a.Partitions) != 4 || a.TopicID == [16]byte{} || a.Partitions[3].Leader != 7 {
		t.Fatalf("auto-created: %+v", a)
	}
	if md.Topics[1].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("invalid name auto-created: %+v", md.Topics[1])
	}
	if md.ClusterID == "" || md.ControllerID != 7 || len(md.Brokers) != 1 || md.Brokers[0].NodeID != 7 {
		t.Fatalf("cluster: %+v", md)
	}
	// Empty non-nil list: no topics. nil: all.
	if md, _ := e.b.Metadata(bg, &brokerop.MetadataReq{Topics: []string{}}); len(md.Topics) != 0 {
		t.Fatalf("empty list returned %d topics", len(md.Topics))
	}
	md2, _ := e.b.Metadata(bg, &brokerop.MetadataReq{})
	if len(md2.Topics) != 1 || md2.Topics[0].TopicID != a.TopicID {
		t.Fatalf("all topics: %+v", md2.Topics)
	}
}

func TestDeleteTopicsPurgesData(t *testing.T) {
	e := newEnv(t)
	id := e.create("gone", 2, nil).TopicID
	e.create("kept", 1, nil)
	for range 10 {
		e.mustProduce(-1, "gone", 1, makeBatch(false, vals(1, "payload")...))
	}
	e.mustProduce(-1, "kept", 0, makeBatch(false, vals(1, "stay")...))
	resp, _ := e.b.DeleteTopics(bg, &brokerop.DeleteTopicsReq{Topics: []string{"gone", "missing", "kept", "kept"}})
	if r := resp.Topics; r[0].ErrorCode != 0 || r[0].TopicID != id || r[1].ErrorCode != kerr.UnknownTopicOrPartition.Code ||
		r[2].ErrorCode != kerr.InvalidRequest.Code || r[3].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("delete: %+v", r)
	}
	for _, f := range e.fs.Files() {
		if strings.Contains(f, "/gone-") {
			t.Fatalf("file of a deleted topic left behind: %s", f)
		}
	}
	if r := e.produce(-1, "gone", 1, makeBatch(false, vals(1, "x")...)); r.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("produce to deleted topic: %+v", r)
	}
	// Recreating the name gives a new, empty topic with a new id; the other topic is intact.
	again := e.create("gone", 1, nil)
	if again.TopicID == id {
		t.Fatal("recreated topic reuses the old id")
	}
	if r := e.fetch("gone", 0, 0, 1<<20); r.HighWatermark != 0 || len(r.Records) != 0 {
		t.Fatalf("recreated topic not empty: %+v", r)
	}
	if _, v := e.readAll("kept", 0, 0); !slices.Equal(v, []string{"stay"}) {
		t.Fatalf("kept topic: %v", v)
	}
	e.restart()
	md, _ := e.b.Metadata(bg, &brokerop.MetadataReq{})
	if len(md.Topics) != 2 || md.Topics[0].Name != "gone" || md.Topics[0].TopicID != again.TopicID {
		t.Fatalf("after restart: %+v", md.Topics)
	}
}

// A delete cut short after the registry write (before the data went) is finished by Open.
func TestOpenPurgesUnregisteredTopicDirs(t *testing.T) {
	e := newTopicEnv(t, 1)
	e.mustProduce(-1, "t", 0, makeBatch(false, vals(1, "x")...))
	e.b.Close()
	// Simulate the crash window: the registry no longer lists the topic, its data remains.
	reg := &FileRegistry{FS: e.fs, Path: "/data/topics.registry"}
	st, err := reg.Load()
	if err != nil || len(st.Topics) != 1 {
		t.Fatalf("load: %v %+v", err, st)
	}
	st.Topics = nil
	if err := reg.Store(st); err != nil {
		t.Fatal(err)
	}
	e.open()
	for _, f := range e.fs.Files() {
		if strings.Contains(f, "/topics/t-") {
			t.Fatalf("unregistered data not purged: %s", f)
		}
	}
}

func TestCreatePartitions(t *testing.T) {
	e := newTopicEnv(t, 2)
	e.mustProduce(-1, "t", 1, makeBatch(false, vals(1, "x")...))
	resp, _ := e.b.CreatePartitions(bg, &brokerop.CreatePartitionsReq{Topics: []brokerop.CreatePartitionsTopic{
		{Name: "t", Count: 4},
		{Name: "nope", Count: 3},
	}})
	if resp.Topics[0].ErrorCode != 0 || resp.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("create partitions: %+v", resp.Topics)
	}
	for _, tc := range []struct {
		req  brokerop.CreatePartitionsTopic
		code int16
		msg  string
	}{
		{brokerop.CreatePartitionsTopic{Name: "t", Count: 3}, kerr.InvalidPartitions.Code, "Topic currently has 4 partitions, which is higher than the requested 3."},
		{brokerop.CreatePartitionsTopic{Name: "t", Count: 4}, kerr.InvalidPartitions.Code, "Topic already has 4 partitions."},
		{brokerop.CreatePartitionsTopic{Name: "t", Count: 6, Assignments: [][]int32{{0}}}, kerr.InvalidReplicaAssignment.Code, ""},
		{brokerop.CreatePartitionsTopic{Name: "t", Count: 5, Assignments: [][]int32{{0, 1}}}, kerr.InvalidReplicaAssignment.Code, ""},
	} {
		r, _ := e.b.CreatePartitions(bg, &brokerop.CreatePartitionsReq{Topics: []brokerop.CreatePartitionsTopic{tc.req}})
		if got := r.Topics[0]; got.ErrorCode != tc.code || tc.msg != "" && got.ErrorMessage != tc.msg {
			t.Errorf("%+v: got %d %q, want %d %q", tc.req, got.ErrorCode, got.ErrorMessage, tc.code, tc.msg)
		}
	}
	r, _ := e.b.CreatePartitions(bg, &brokerop.CreatePartitionsReq{ValidateOnly: true, Topics: []brokerop.CreatePartitionsTopic{{Name: "t", Count: 5, Assignments: [][]int32{{0}}}}})
	if r.Topics[0].ErrorCode != 0 {
		t.Fatalf("valid assignment refused: %+v", r.Topics[0])
	}
	e.mustProduce(-1, "t", 3, makeBatch(false, vals(1, "new")...))
	e.restart()
	md, _ := e.b.Metadata(bg, &brokerop.MetadataReq{Topics: []string{"t"}})
	if len(md.Topics[0].Partitions) != 4 {
		t.Fatalf("after restart: %d partitions, want 4 (validate-only must not grow)", len(md.Topics[0].Partitions))
	}
	if _, v := e.readAll("t", 3, 0); !slices.Equal(v, []string{"new"}) {
		t.Fatalf("new partition data: %v", v)
	}
	if _, v := e.readAll("t", 1, 0); !slices.Equal(v, []string{"x"}) {
		t.Fatalf("old partition data: %v", v)
	}
}

func describe(t *testing.T, b *Broker, typ int8, name string, synonyms bool, names ...string) brokerop.DescribeConfigsResourceResp {
	t.Helper()
	resp, err := b.DescribeConfigs(bg, &brokerop.DescribeConfigsReq{IncludeSynonyms: synonyms, IncludeDocumentation: true,
		Resources: []brokerop.DescribeConfigsResource{{Type: typ, Name: name, ConfigNames: names}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Resources[0]
}

func entry(r brokerop.DescribeConfigsResourceResp, name string) *brokerop.ConfigEntry {
	for i := range r.Configs {
		if r.Configs[i].Name == name {
			return &r.Configs[i]
		}
	}
	return nil
}

func TestDescribeConfigs(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TopicDefaults = map[string]string{"retention.bytes": "1000000"} })
	e.create("orders-v1", 3, map[string]string{"retention.ms": "3600000"})
	r := describe(t, e.b, brokerop.ResourceTopic, "orders-v1", true)
	if r.ErrorCode != 0 {
		t.Fatalf("describe: %+v", r)
	}
	ret := entry(r, "retention.ms")
	if ret == nil || *ret.Value != "3600000" || ret.Source != brokerop.SourceDynamicTopic || ret.IsDefault || ret.ConfigType != brokerop.ConfigTypeLong {
		t.Fatalf("retention.ms: %+v", ret)
	}
	if len(ret.Synonyms) != 2 || ret.Synonyms[0].Source != brokerop.SourceDynamicTopic || ret.Synonyms[1].Name != "log.retention.ms" ||
		*ret.Synonyms[1].Value != "604800000" || ret.Synonyms[1].Source != brokerop.SourceDefault {
		t.Fatalf("retention.ms synonyms: %+v", ret.Synonyms)
	}
	seg := entry(r, "segment.bytes")
	if seg == nil || *seg.Value != "1073741824" || seg.Source != brokerop.SourceDefault || !seg.IsDefault || seg.Documentation == "" {
		t.Fatalf("segment.bytes: %+v", seg)
	}
	rb := entry(r, "retention.bytes")
	if rb == nil || *rb.Value != "1000000" || rb.Source != brokerop.SourceStaticBroker || rb.Synonyms[0].Name != "log.retention.bytes" {
		t.Fatalf("retention.bytes from the broker default: %+v", rb)
	}
	if cp := entry(r, "cleanup.policy"); cp == nil || *cp.Value != "delete" || cp.ConfigType != brokerop.ConfigTypeList {
		t.Fatalf("cleanup.policy: %+v", cp)
	}
	if !slices.IsSortedFunc(r.Configs, func(a, b brokerop.ConfigEntry) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatal("configs not sorted")
	}
	// Filtered, without synonyms.
	r = describe(t, e.b, brokerop.ResourceTopic, "orders-v1", false, "max.message.bytes")
	if len(r.Configs) != 1 || *r.Configs[0].Value != "1048588" || r.Configs[0].Synonyms != nil {
		t.Fatalf("filtered: %+v", r.Configs)
	}
	if r := describe(t, e.b, brokerop.ResourceTopic, "nope", false); r.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %+v", r)
	}
	br := describe(t, e.b, brokerop.ResourceBroker, "0", false)
	if br.ErrorCode != 0 || entry(br, "log.retention.bytes") == nil || *entry(br, "log.retention.bytes").Value != "1000000" ||
		entry(br, "num.partitions") == nil || !entry(br, "broker.id").ReadOnly {
		t.Fatalf("broker configs: %+v", br)
	}
	if r := describe(t, e.b, brokerop.ResourceBroker, "5", false); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("other broker: %+v", r)
	}
	if r := describe(t, e.b, 99, "x", false); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("bad type: %+v", r)
	}
}

func sp(s string) *string { return &s }

func TestAlterConfigs(t *testing.T) {
	e := newEnv(t)
	e.create("t", 1, map[string]string{"retention.ms": "3600000", "max.message.bytes": "5000"})
	alter := func(validateOnly bool, cfgs ...brokerop.AlterConfig) brokerop.AlterConfigsResourceResp {
		resp, err := e.b.AlterConfigs(bg, &brokerop.AlterConfigsReq{ValidateOnly: validateOnly, Resources: []brokerop.AlterConfigsResource{
			{Type: brokerop.ResourceTopic, Name: "t", Configs: cfgs}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Resources[0]
	}
	// Full replace: max.message.bytes, not listed, goes back to its default.
	if r := alter(false, brokerop.AlterConfig{Name: "retention.ms", Value: sp("60000")}); r.ErrorCode != 0 {
		t.Fatalf("alter: %+v", r)
	}
	r := describe(t, e.b, brokerop.ResourceTopic, "t", false)
	if v := entry(r, "retention.ms"); *v.Value != "60000" || v.Source != brokerop.SourceDynamicTopic {
		t.Fatalf("retention.ms: %+v", v)
	}
	if v := entry(r, "max.message.bytes"); *v.Value != "1048588" || v.Source != brokerop.SourceDefault {
		t.Fatalf("max.message.bytes not reset: %+v", v)
	}
	for _, tc := range []struct {
		cfgs []brokerop.AlterConfig
		code int16
	}{
		{[]brokerop.AlterConfig{{Name: "cleanup.policy", Value: sp("shred")}}, kerr.InvalidConfig.Code},
		{[]brokerop.AlterConfig{{Name: "retention.ms", Value: sp("-5")}}, kerr.InvalidConfig.Code},
		{[]brokerop.AlterConfig{{Name: "nope", Value: sp("1")}}, kerr.InvalidConfig.Code},
		{[]brokerop.AlterConfig{{Name: "retention.ms", Value: sp("1")}, {Name: "retention.ms", Value: sp("2")}}, kerr.InvalidRequest.Code},
		{[]brokerop.AlterConfig{{Name: "retention.ms", Value: nil}}, kerr.InvalidRequest.Code},
	} {
		if r := alter(false, tc.cfgs...); r.ErrorCode != tc.code || r.ErrorMessage == "" {
			t.Errorf("%+v: %+v, want %d", tc.cfgs, r, tc.code)
		}
	}
	// validate_only changes nothing.
	if r := alter(true, brokerop.AlterConfig{Name: "retention.ms", Value: sp("1")}); r.ErrorCode != 0 {
		t.Fatalf("validate only: %+v", r)
	}
	if v := entry(describe(t, e.b, brokerop.ResourceTopic, "t", false), "retention.ms"); *v.Value != "60000" {
		t.Fatalf("validate only changed the config: %s", *v.Value)
	}
	resp, _ := e.b.AlterConfigs(bg, &brokerop.AlterConfigsReq{Resources: []brokerop.AlterConfigsResource{
		{Type: brokerop.ResourceTopic, Name: "missing"}, {Type: brokerop.ResourceBroker, Name: "0"}}})
	if resp.Resources[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || resp.Resources[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("missing topic / broker: %+v", resp.Resources)
	}
	// Survives a restart.
	e.restart()
	if v := entry(describe(t, e.b, brokerop.ResourceTopic, "t", false), "retention.ms"); *v.Value != "60000" {
		t.Fatalf("after restart: %s", *v.Value)
	}
}

func TestIncrementalAlterConfigs(t *testing.T) {
	e := newEnv(t)
	e.create("t", 1, map[string]string{"retention.ms": "3600000", "retention.bytes": "100000"})
	inc := func(cfgs ...brokerop.IncrementalAlterConfig) brokerop.AlterConfigsResourceResp {
		resp, err := e.b.IncrementalAlterConfigs(bg, &brokerop.IncrementalAlterConfigsReq{Resources: []brokerop.IncrementalAlterConfigsResource{
			{Type: brokerop.ResourceTopic, Name: "t", Configs: cfgs}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Resources[0]
	}
	if r := inc(brokerop.IncrementalAlterConfig{Name: "retention.ms", Op: brokerop.ConfigOpSet, Value: sp("60000")},
		brokerop.IncrementalAlterConfig{Name: "retention.bytes", Op: brokerop.ConfigOpDelete}); r.ErrorCode != 0 {
		t.Fatalf("set+delete: %+v", r)
	}
	r := describe(t, e.b, brokerop.ResourceTopic, "t", false)
	if *entry(r, "retention.ms").Value != "60000" || entry(r, "retention.bytes").Source != brokerop.SourceDefault {
		t.Fatalf("after set+delete: %+v %+v", entry(r, "retention.ms"), entry(r, "retention.bytes"))
	}
	for _, tc := range []struct {
		c    brokerop.IncrementalAlterConfig
		code int16
	}{
		{brokerop.IncrementalAlterConfig{Name: "cleanup.policy", Op: brokerop.ConfigOpAppend, Value: sp("shred")}, kerr.InvalidConfig.Code},
		{brokerop.IncrementalAlterConfig{Name: "cleanup.policy", Op: brokerop.ConfigOpSubtract, Value: sp("delete")}, kerr.InvalidConfig.Code},
		{brokerop.IncrementalAlterConfig{Name: "retention.ms", Op: brokerop.ConfigOpAppend, Value: sp("1")}, kerr.InvalidConfig.Code},
		{brokerop.IncrementalAlterConfig{Name: "retention.ms", Op: 9, Value: sp("1")}, kerr.InvalidRequest.Code},
		{brokerop.IncrementalAlterConfig{Name: "segment.bytes", Op: brokerop.ConfigOpSet, Value: sp("1")}, kerr.InvalidConfig.Code},
	} {
		if r := inc(tc.c); r.ErrorCode != tc.code || r.ErrorMessage == "" {
			t.Errorf("%+v: %+v, want %d", tc.c, r, tc.code)
		}
	}
	if r := inc(brokerop.IncrementalAlterConfig{Name: "cleanup.policy", Op: brokerop.ConfigOpAppend, Value: sp("delete")}); r.ErrorCode != 0 {
		t.Fatalf("append delete: %+v", r)
	}
	if v := entry(describe(t, e.b, brokerop.ResourceTopic, "t", false), "retention.ms"); *v.Value != "60000" {
		t.Fatalf("a refused change altered the config: %s", *v.Value)
	}
}

func TestDescribeCluster(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.NodeID = 3 })
	r, _ := e.b.DescribeCluster(bg, &brokerop.DescribeClusterReq{})
	if r.ClusterID == "" || r.ControllerID != 3 || len(r.Brokers) != 1 || r.Brokers[0].NodeID != 3 {
		t.Fatalf("%+v", r)
	}
	id := r.ClusterID
	e.restart()
	if r, _ := e.b.DescribeCluster(bg, &brokerop.DescribeClusterReq{}); r.ClusterID != id {
		t.Fatalf("cluster id changed across restart: %s → %s", id, r.ClusterID)
	}
}
