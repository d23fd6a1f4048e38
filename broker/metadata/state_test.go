package metadata_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/meshkafka/meshkafka/internal/postcard"
)

// A case applies setup, then cmd, and compares the result; check (optional) looks at the state.
type tcase struct {
	name  string
	setup []metadata.Command
	cmd   metadata.Command
	want  any
	check func(t *testing.T, s *metadata.State)
}

func run(t *testing.T, brokers int, cases []tcase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := cluster(t, brokers)
			mustApply(t, s, c.setup...)
			before := snap(t, s)
			valid := s.Validate(c.cmd)
			if string(snap(t, s)) != string(before) {
				t.Fatal("Validate changed the state")
			}
			got := apply(t, s, c.cmd)
			check(t, got, c.want)
			check(t, valid, c.want) // a dry run answers what applying answers
			if c.check != nil {
				c.check(t, s)
			}
		})
	}
}

func TestInitCluster(t *testing.T) {
	s := metadata.New()
	check(t, apply(t, s, &metadata.InitCluster{}), &metadata.InitClusterResult{Code: metadata.CodeInvalidRequest})
	check(t, apply(t, s, &metadata.InitCluster{ClusterID: "a"}), &metadata.InitClusterResult{ClusterID: "a"})
	check(t, apply(t, s, &metadata.InitCluster{ClusterID: "a"}), &metadata.InitClusterResult{ClusterID: "a"})
	check(t, apply(t, s, &metadata.InitCluster{ClusterID: "b"}), &metadata.InitClusterResult{ClusterID: "a", Code: metadata.CodeInconsistentClusterID})
	check(t, s.ClusterID(), "a")
}

func TestBrokers(t *testing.T) {
	run(t, 2, []tcase{
		{name: "new broker", cmd: &metadata.RegisterBroker{RaftID: 10, NodeID: node(10), Addr: []byte("x"), Rack: "r2"},
			want: &metadata.RegisterBrokerResult{KafkaID: 3},
			check: func(t *testing.T, s *metadata.State) {
				b, ok := s.BrokerByNode(node(10))
				check(t, ok, true)
				check(t, b, metadata.Broker{RaftID: 10, NodeID: node(10), Addr: []byte("x"), Rack: "r2", KafkaID: 3})
				b2, _ := s.Broker(10)
				check(t, b2, b)
				b3, _ := s.BrokerByKafkaID(3)
				check(t, b3, b)
				check(t, len(s.Brokers()), 3)
			}},
		{name: "same incarnation updates its address", cmd: &metadata.RegisterBroker{RaftID: 1, NodeID: node(1), Addr: []byte("new")},
			want: &metadata.RegisterBrokerResult{KafkaID: 1},
			check: func(t *testing.T, s *metadata.State) {
				b, _ := s.Broker(1)
				check(t, string(b.Addr), "new")
				check(t, b.Rack, "")
			}},
		{name: "new incarnation replaces the old raft id and keeps the kafka id",
			cmd:  &metadata.RegisterBroker{RaftID: 77, NodeID: node(2)},
			want: &metadata.RegisterBrokerResult{KafkaID: 2, Replaced: 2},
			check: func(t *testing.T, s *metadata.State) {
				if _, ok := s.Broker(2); ok {
					t.Error("old raft id still registered")
				}
				b, _ := s.BrokerByNode(node(2))
				check(t, b.RaftID, uint64(77))
				check(t, len(s.Brokers()), 2)
			}},
		{name: "raft id 0", cmd: &metadata.RegisterBroker{NodeID: node(5)},
			want: &metadata.RegisterBrokerResult{Code: metadata.CodeInvalidRequest, Message: "Raft id 0 is not a valid raft id."}},
		{name: "zero node id", cmd: &metadata.RegisterBroker{RaftID: 5},
			want: &metadata.RegisterBrokerResult{Code: metadata.CodeInvalidRequest, Message: "The zero NodeId is not a valid broker identity."}},
		{name: "raft id of another node", cmd: &metadata.RegisterBroker{RaftID: 1, NodeID: node(5)},
			want: &metadata.RegisterBrokerResult{Code: metadata.CodeInvalidRequest, Message: "Raft id 1 is registered to broker " + node(1).String() + "."},
			check: func(t *testing.T, s *metadata.State) {
				if _, ok := s.BrokerByNode(node(5)); ok {
					t.Error("refused broker registered")
				}
				if _, ok := s.KafkaID(node(5)); ok {
					t.Error("refused broker got a kafka id")
				}
			}},
		{name: "remove", cmd: &metadata.RemoveBroker{RaftID: 2}, want: &metadata.RemoveBrokerResult{NodeID: node(2)},
			check: func(t *testing.T, s *metadata.State) {
				if _, ok := s.BrokerByNode(node(2)); ok {
					t.Error("removed broker still there")
				}
				if kid, ok := s.KafkaID(node(2)); !ok || kid != 2 {
					t.Errorf("kafka id of a removed broker: %d %v, want kept", kid, ok)
				}
			}},
		{name: "remove unknown", cmd: &metadata.RemoveBroker{RaftID: 9}, want: &metadata.RemoveBrokerResult{Code: metadata.CodeBrokerNotAvailable}},
		{name: "rejoin after removal keeps the kafka id", setup: []metadata.Command{&metadata.RemoveBroker{RaftID: 1}},
			cmd: &metadata.RegisterBroker{RaftID: 100, NodeID: node(1)}, want: &metadata.RegisterBrokerResult{KafkaID: 1}},
		{name: "allow", cmd: &metadata.AllowBroker{NodeID: node(4)}, want: &metadata.AllowBrokerResult{Changed: true},
			check: func(t *testing.T, s *metadata.State) {
				check(t, s.Allowed(node(4)), true)
				check(t, s.AllowedNodes(), []metadata.NodeID{node(4)})
			}},
		{name: "allow again", setup: []metadata.Command{&metadata.AllowBroker{NodeID: node(4)}},
			cmd: &metadata.AllowBroker{NodeID: node(4)}, want: &metadata.AllowBrokerResult{}},
		{name: "disallow", setup: []metadata.Command{&metadata.AllowBroker{NodeID: node(4)}, &metadata.AllowBroker{NodeID: node(3)}},
			cmd: &metadata.DisallowBroker{NodeID: node(4)}, want: &metadata.AllowBrokerResult{Changed: true},
			check: func(t *testing.T, s *metadata.State) {
				check(t, s.Allowed(node(4)), false)
				check(t, s.AllowedNodes(), []metadata.NodeID{node(3)})
			}},
		{name: "disallow unknown", cmd: &metadata.DisallowBroker{NodeID: node(4)}, want: &metadata.AllowBrokerResult{}},
	})
}

func topic(name string, id byte, n int, os ...metadata.NodeID) metadata.NewTopic {
	return metadata.NewTopic{Name: name, ID: tid(id), Partitions: int32(n), Owners: owners(n, os...)}
}

func TestCreateTopics(t *testing.T) {
	n1, n2 := node(1), node(2)
	existing := &metadata.CreateTopics{Topics: []metadata.NewTopic{topic("have", 1, 2, n1), topic("a.b", 2, 1, n2)}}
	limitMsg := "Adding 3 partitions would bring broker " + n1.String() + " to 5 partitions, above its limit of 4 " +
		"(the broker's max partitions setting; it now has 2)."
	run(t, 2, []tcase{
		{name: "created", setup: []metadata.Command{existing},
			cmd: &metadata.CreateTopics{Topics: []metadata.NewTopic{
				{Name: "x", ID: tid(9), Partitions: 3, Configs: map[string]string{"retention.ms": "5"}, Owners: []metadata.NodeID{n1, n2, n1}},
			}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{{Name: "x", ID: tid(9)}}},
			check: func(t *testing.T, s *metadata.State) {
				want := metadata.Topic{Name: "x", ID: tid(9), Configs: map[string]string{"retention.ms": "5"},
					Partitions: []metadata.Partition{{Owner: n1}, {Owner: n2}, {Owner: n1}}}
				got, _ := s.Topic("x")
				check(t, got, want)
				got, _ = s.TopicByID(tid(9))
				check(t, got, want)
				check(t, s.TopicNames(), []string{"a.b", "have", "x"})
				check(t, s.PartitionCount(n1), int64(4))
				check(t, s.PartitionCount(n2), int64(2))
				p, ok := s.Owner("x", 1)
				check(t, p, metadata.Partition{Owner: n2})
				check(t, ok, true)
				if _, ok := s.Owner("x", 3); ok {
					t.Error("partition 3 of a 3-partition topic exists")
				}
			}},
		{name: "error codes in broker order", setup: []metadata.Command{existing},
			cmd: &metadata.CreateTopics{Topics: []metadata.NewTopic{
				topic("dup", 10, 1, n1), topic("dup", 11, 1, n1),
				topic("bad name", 12, 1, n1),
				topic("", 13, 1, n1),
				topic("have", 14, 1, n1),
				topic("a_b", 15, 1, n1),
				{Name: "zero-id", Partitions: 1, Owners: []metadata.NodeID{n1}},
				topic("used-id", 1, 1, n1),
				{Name: "no-parts", ID: tid(16), Partitions: 0},
				{Name: "neg-parts", ID: tid(17), Partitions: -1},
				{Name: "few-owners", ID: tid(18), Partitions: 2, Owners: []metadata.NodeID{n1}},
				topic("stranger", 19, 1, node(99)),
				topic("ok", 20, 1, n2),
				topic("ok.2", 21, 1, n2),
				topic("ok_2", 22, 1, n2), // collides with "ok.2" of this same request
				topic("same-id", 20, 1, n2),
			}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{
				{Name: "dup", Code: metadata.CodeInvalidRequest, Message: "Create topics request contains multiple entries for the following topics: dup"},
				{Name: "dup", Code: metadata.CodeInvalidRequest, Message: "Create topics request contains multiple entries for the following topics: dup"},
				{Name: "bad name", Code: metadata.CodeInvalidTopicException, Message: `Topic name "bad name" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'`},
				{Name: "", Code: metadata.CodeInvalidTopicException, Message: "Topic name is illegal, it can't be empty"},
				{Name: "have", Code: metadata.CodeTopicAlreadyExists, Message: "Topic 'have' already exists."},
				{Name: "a_b", Code: metadata.CodeInvalidTopicException, Message: "Topic 'a_b' collides with existing topic: a.b"},
				{Name: "zero-id", Code: metadata.CodeInvalidRequest, Message: "The topic id must not be zero."},
				{Name: "used-id", Code: metadata.CodeInvalidRequest, Message: "Topic id 010000000000000000000000000000ee is already in use."},
				{Name: "no-parts", Code: metadata.CodeInvalidPartitions, Message: "Number of partitions was set to an invalid non-positive value."},
				{Name: "neg-parts", Code: metadata.CodeInvalidPartitions, Message: "Number of partitions was set to an invalid non-positive value."},
				{Name: "few-owners", Code: metadata.CodeInvalidReplicaAssignment, Message: "Increasing the number of partitions by 2 but 1 assignments provided."},
				{Name: "stranger", Code: metadata.CodeInvalidReplicaAssignment, Message: "Broker " + node(99).String() + " is not a registered broker."},
				{Name: "ok", ID: tid(20)},
				{Name: "ok.2", ID: tid(21)},
				{Name: "ok_2", Code: metadata.CodeInvalidTopicException, Message: "Topic 'ok_2' collides with existing topic: ok.2"},
				{Name: "same-id", Code: metadata.CodeInvalidRequest, Message: "Topic id 140000000000000000000000000000ee is already in use."},
			}},
			check: func(t *testing.T, s *metadata.State) {
				check(t, s.TopicNames(), []string{"a.b", "have", "ok", "ok.2"})
			}},
		{name: "too long name", cmd: &metadata.CreateTopics{Topics: []metadata.NewTopic{topic(strings.Repeat("x", 250), 1, 1, n1)}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{{Name: strings.Repeat("x", 250), Code: metadata.CodeInvalidTopicException,
				Message: "Topic name is illegal, it can't be longer than 249 characters, topic name: " + strings.Repeat("x", 250)}}}},
		{name: "dot names", cmd: &metadata.CreateTopics{Topics: []metadata.NewTopic{topic(".", 1, 1, n1), topic("..", 2, 1, n1)}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{
				{Name: ".", Code: metadata.CodeInvalidTopicException, Message: `Topic name cannot be "." or ".."`},
				{Name: "..", Code: metadata.CodeInvalidTopicException, Message: `Topic name cannot be "." or ".."`}}}},
		{name: "per-broker limit counts earlier topics of the request", setup: []metadata.Command{existing},
			cmd: &metadata.CreateTopics{MaxPartitions: 4, Topics: []metadata.NewTopic{
				topic("fits", 10, 2, n1, n2), // n1: 2+1, n2: 1+1
				topic("over", 11, 3, n1),     // n1 would go 3 -> 6
				topic("fits2", 12, 1, n1),    // n1: 4 exactly
				topic("over2", 13, 1, n1),
			}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{
				{Name: "fits", ID: tid(10)},
				{Name: "over", Code: metadata.CodeInvalidPartitions, Message: strings.Replace(strings.Replace(limitMsg, "to 5", "to 6", 1), "has 2", "has 3", 1)},
				{Name: "fits2", ID: tid(12)},
				{Name: "over2", Code: metadata.CodeInvalidPartitions, Message: "Adding 1 partitions would bring broker " + n1.String() +
					" to 5 partitions, above its limit of 4 (the broker's max partitions setting; it now has 4)."},
			}},
			check: func(t *testing.T, s *metadata.State) {
				check(t, s.PartitionCount(n1), int64(4))
				check(t, s.PartitionCount(n2), int64(2))
			}},
		{name: "limit message", setup: []metadata.Command{existing},
			cmd:  &metadata.CreateTopics{MaxPartitions: 4, Topics: []metadata.NewTopic{topic("big", 10, 3, n1)}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{{Name: "big", Code: metadata.CodeInvalidPartitions, Message: limitMsg}}}},
		{name: "no configs stored as nil", cmd: &metadata.CreateTopics{Topics: []metadata.NewTopic{
			{Name: "t", ID: tid(1), Partitions: 1, Configs: map[string]string{}, Owners: []metadata.NodeID{n1}}}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{{Name: "t", ID: tid(1)}}},
			check: func(t *testing.T, s *metadata.State) {
				got, _ := s.Topic("t")
				if got.Configs != nil {
					t.Errorf("configs %v", got.Configs)
				}
			}},
	})
}

func TestDeleteTopics(t *testing.T) {
	n1, n2 := node(1), node(2)
	setup := []metadata.Command{&metadata.CreateTopics{Topics: []metadata.NewTopic{topic("a", 1, 3, n1, n2), topic("b.c", 2, 1, n1)}}}
	run(t, 2, []tcase{
		{name: "deleted", setup: setup, cmd: &metadata.DeleteTopics{Names: []string{"a", "b.c", "zz", "a"}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{
				{Name: "a", Code: metadata.CodeInvalidRequest, Message: "Duplicate topic in request."},
				{Name: "b.c", ID: tid(2)},
				{Name: "zz", Code: metadata.CodeUnknownTopicOrPartition, Message: "Topic 'zz' does not exist."},
				{Name: "a", Code: metadata.CodeInvalidRequest, Message: "Duplicate topic in request."},
			}},
			check: func(t *testing.T, s *metadata.State) {
				check(t, s.TopicNames(), []string{"a"})
				check(t, s.PartitionCount(n1), int64(2))
				if _, ok := s.TopicByID(tid(2)); ok {
					t.Error("deleted topic found by id")
				}
				// The name, its collision key and its id are free again.
				mustApply(t, s, &metadata.CreateTopics{Topics: []metadata.NewTopic{topic("b_c", 2, 1, n1)}})
				check(t, s.TopicNames(), []string{"a", "b_c"})
			}},
		{name: "all partitions disowned", setup: setup, cmd: &metadata.DeleteTopics{Names: []string{"a", "b.c"}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{{Name: "a", ID: tid(1)}, {Name: "b.c", ID: tid(2)}}},
			check: func(t *testing.T, s *metadata.State) {
				check(t, s.PartitionCount(n1)+s.PartitionCount(n2), int64(0))
				check(t, len(s.Topics()), 0)
			}},
	})
}

func TestCreatePartitions(t *testing.T) {
	n1, n2 := node(1), node(2)
	setup := []metadata.Command{&metadata.CreateTopics{Topics: []metadata.NewTopic{topic("a", 1, 2, n1), topic("b", 2, 1, n2)}}}
	run(t, 2, []tcase{
		{name: "grown", setup: setup,
			cmd:  &metadata.CreatePartitions{Topics: []metadata.NewPartitions{{Name: "a", Count: 4, Owners: []metadata.NodeID{n2, n1}}}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{{Name: "a", ID: tid(1)}}},
			check: func(t *testing.T, s *metadata.State) {
				got, _ := s.Topic("a")
				check(t, got.Partitions, []metadata.Partition{{Owner: n1}, {Owner: n1}, {Owner: n2}, {Owner: n1}})
				check(t, s.PartitionCount(n1), int64(3))
			}},
		{name: "errors", setup: setup,
			cmd: &metadata.CreatePartitions{MaxPartitions: 3, Topics: []metadata.NewPartitions{
				{Name: "d", Count: 5}, {Name: "d", Count: 5},
				{Name: "nope", Count: 5},
				{Name: "a", Count: 1},
				{Name: "b", Count: 1},
				{Name: "b", Count: 3, Owners: []metadata.NodeID{n1}},
			}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{
				{Name: "d", Code: metadata.CodeInvalidRequest, Message: "Duplicate topic in request."},
				{Name: "d", Code: metadata.CodeInvalidRequest, Message: "Duplicate topic in request."},
				{Name: "nope", Code: metadata.CodeUnknownTopicOrPartition, Message: "The topic 'nope' does not exist."},
				{Name: "a", Code: metadata.CodeInvalidPartitions, Message: "Topic currently has 2 partitions, which is higher than the requested 1."},
				{Name: "b", Code: metadata.CodeInvalidRequest, Message: "Duplicate topic in request."},
				{Name: "b", Code: metadata.CodeInvalidRequest, Message: "Duplicate topic in request."},
			}}},
		{name: "same count, owners, limit", setup: setup,
			cmd: &metadata.CreatePartitions{MaxPartitions: 3, Topics: []metadata.NewPartitions{
				{Name: "b", Count: 1},
				{Name: "a", Count: 3, Owners: []metadata.NodeID{n1, n1}},
				{Name: "a", Count: 3, Owners: []metadata.NodeID{node(50)}},
			}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{
				{Name: "b", Code: metadata.CodeInvalidPartitions, Message: "Topic already has 1 partitions."},
				{Name: "a", Code: metadata.CodeInvalidRequest, Message: "Duplicate topic in request."},
				{Name: "a", Code: metadata.CodeInvalidRequest, Message: "Duplicate topic in request."},
			}}},
		{name: "assignment count", setup: setup,
			cmd: &metadata.CreatePartitions{Topics: []metadata.NewPartitions{{Name: "a", Count: 3, Owners: []metadata.NodeID{n1, n1}}}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{
				{Name: "a", Code: metadata.CodeInvalidReplicaAssignment, Message: "Increasing the number of partitions by 1 but 2 assignments provided."}}}},
		{name: "unregistered owner", setup: setup,
			cmd: &metadata.CreatePartitions{Topics: []metadata.NewPartitions{{Name: "a", Count: 3, Owners: []metadata.NodeID{node(50)}}}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{
				{Name: "a", Code: metadata.CodeInvalidReplicaAssignment, Message: "Broker " + node(50).String() + " is not a registered broker."}}}},
		{name: "limit", setup: setup,
			cmd: &metadata.CreatePartitions{MaxPartitions: 3, Topics: []metadata.NewPartitions{
				{Name: "a", Count: 3, Owners: []metadata.NodeID{n1}}, // n1: 3
				{Name: "b", Count: 2, Owners: []metadata.NodeID{n1}}, // n1 would be 4
			}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{
				{Name: "a", ID: tid(1)},
				{Name: "b", Code: metadata.CodeInvalidPartitions, Message: "Adding 1 partitions would bring broker " + n1.String() +
					" to 4 partitions, above its limit of 3 (the broker's max partitions setting; it now has 3)."},
			}},
			check: func(t *testing.T, s *metadata.State) {
				got, _ := s.Topic("b")
				check(t, len(got.Partitions), 1)
			}},
	})
}

func TestAlterConfigs(t *testing.T) {
	setup := []metadata.Command{&metadata.CreateTopics{Topics: []metadata.NewTopic{
		{Name: "a", ID: tid(1), Partitions: 1, Owners: owners(1, node(1)), Configs: map[string]string{"k1": "v1", "k2": "v2"}},
		topic("b", 2, 1, node(1)),
	}}}
	cfg := func(s *metadata.State, name string) map[string]string { tp, _ := s.Topic(name); return tp.Configs }
	run(t, 1, []tcase{
		{name: "incremental", setup: setup,
			cmd: &metadata.AlterConfigs{Topics: []metadata.ConfigChange{
				{Name: "a", Set: map[string]string{"k2": "x", "k3": "y"}, Delete: []string{"k1", "nope"}},
				{Name: "b", Set: map[string]string{"k": "v"}},
			}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{{Name: "a", ID: tid(1)}, {Name: "b", ID: tid(2)}}},
			check: func(t *testing.T, s *metadata.State) {
				check(t, cfg(s, "a"), map[string]string{"k2": "x", "k3": "y"})
				check(t, cfg(s, "b"), map[string]string{"k": "v"})
			}},
		{name: "replace", setup: setup,
			cmd:  &metadata.AlterConfigs{Topics: []metadata.ConfigChange{{Name: "a", Replace: true, Set: map[string]string{"k9": "9"}}}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{{Name: "a", ID: tid(1)}}},
			check: func(t *testing.T, s *metadata.State) {
				check(t, cfg(s, "a"), map[string]string{"k9": "9"})
			}},
		{name: "replace with nothing", setup: setup,
			cmd:  &metadata.AlterConfigs{Topics: []metadata.ConfigChange{{Name: "a", Replace: true}}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{{Name: "a", ID: tid(1)}}},
			check: func(t *testing.T, s *metadata.State) {
				if c := cfg(s, "a"); c != nil {
					t.Errorf("configs %v", c)
				}
			}},
		{name: "errors", setup: setup,
			cmd: &metadata.AlterConfigs{Topics: []metadata.ConfigChange{
				{Name: "nope"},
				{Name: "b", Set: map[string]string{"x": "1"}, Delete: []string{"x"}},
				{Name: "a", Delete: []string{"k1", "k1"}},
			}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{
				{Name: "nope", Code: metadata.CodeUnknownTopicOrPartition, Message: "Topic 'nope' does not exist."},
				{Name: "b", Code: metadata.CodeInvalidRequest, Message: "Error due to duplicate config keys: x"},
				{Name: "a", Code: metadata.CodeInvalidRequest, Message: "Error due to duplicate config keys: k1"},
			}},
			check: func(t *testing.T, s *metadata.State) {
				check(t, cfg(s, "a"), map[string]string{"k1": "v1", "k2": "v2"})
				if c := cfg(s, "b"); c != nil {
					t.Errorf("configs of b %v", c)
				}
			}},
		{name: "listed twice", setup: setup,
			cmd: &metadata.AlterConfigs{Topics: []metadata.ConfigChange{{Name: "a"}, {Name: "a"}}},
			want: &metadata.TopicsResult{Topics: []metadata.TopicResult{
				{Name: "a", Code: metadata.CodeInvalidRequest, Message: "Duplicate resource in request: topic a"},
				{Name: "a", Code: metadata.CodeInvalidRequest, Message: "Duplicate resource in request: topic a"},
			}}},
	})
}

func TestApplyConfigChangeLeavesInputAlone(t *testing.T) {
	cur := map[string]string{"a": "1"}
	next, code, _ := metadata.ApplyConfigChange(cur, metadata.ConfigChange{Set: map[string]string{"b": "2"}, Delete: []string{"a"}})
	check(t, code, metadata.CodeNone)
	check(t, next, map[string]string{"b": "2"})
	check(t, cur, map[string]string{"a": "1"})
}

func TestReassign(t *testing.T) {
	n1, n2, n3 := node(1), node(2), node(3)
	setup := []metadata.Command{
		&metadata.CreateTopics{Topics: []metadata.NewTopic{topic("a", 1, 3, n1, n2, n3)}},
		&metadata.RemoveBroker{RaftID: 3},
	}
	run(t, 3, []tcase{
		{name: "orphans placed again", setup: setup,
			cmd: &metadata.Reassign{Moves: []metadata.Move{
				{Topic: "a", Partition: 2, Owner: n1},
				{Topic: "a", Partition: 2, Owner: n2}, // twice in one command: epoch 2
				{Topic: "a", Partition: 3, Owner: n1},
				{Topic: "a", Partition: -1, Owner: n1},
				{Topic: "b", Partition: 0, Owner: n1},
				{Topic: "a", Partition: 0, Owner: n3},
			}},
			want: &metadata.ReassignResult{Moves: []metadata.MoveResult{
				{Epoch: 1}, {Epoch: 2},
				{Code: metadata.CodeUnknownTopicOrPartition, Message: "Partition a-3 does not exist."},
				{Code: metadata.CodeUnknownTopicOrPartition, Message: "Partition a--1 does not exist."},
				{Code: metadata.CodeUnknownTopicOrPartition, Message: "Partition b-0 does not exist."},
				{Code: metadata.CodeInvalidReplicaAssignment, Message: "Broker " + n3.String() + " is not a registered broker."},
			}},
			check: func(t *testing.T, s *metadata.State) {
				p, _ := s.Owner("a", 2)
				check(t, p, metadata.Partition{Owner: n2, Epoch: 2})
				check(t, s.PartitionCount(n3), int64(0))
				check(t, s.PartitionCount(n2), int64(2))
				check(t, len(s.OrphanedPartitions()), 0)
			}},
		{name: "orphans listed", setup: setup, cmd: &metadata.Reassign{}, want: &metadata.ReassignResult{Moves: []metadata.MoveResult{}},
			check: func(t *testing.T, s *metadata.State) {
				check(t, s.OrphanedPartitions(), []metadata.TopicPartition{{Topic: "a", Partition: 2}})
			}},
	})
}

func TestAllocateProducerIDs(t *testing.T) {
	s := metadata.New()
	check(t, apply(t, s, &metadata.AllocateProducerIDs{Count: 1000}), &metadata.AllocateProducerIDsResult{First: 0, Count: 1000})
	check(t, apply(t, s, &metadata.AllocateProducerIDs{Count: 1}), &metadata.AllocateProducerIDsResult{First: 1000, Count: 1})
	check(t, apply(t, s, &metadata.AllocateProducerIDs{Count: 0}), &metadata.AllocateProducerIDsResult{Code: metadata.CodeInvalidRequest, First: -1})
	check(t, apply(t, s, &metadata.AllocateProducerIDs{Count: -5}), &metadata.AllocateProducerIDsResult{Code: metadata.CodeInvalidRequest, First: -1})
	check(t, apply(t, s, &metadata.AllocateProducerIDs{Count: metadata.MaxProducerIDBlock + 1}), &metadata.AllocateProducerIDsResult{Code: metadata.CodeInvalidRequest, First: -1})
	check(t, s.NextProducerID(), int64(1001))

	// Near the end of the id space (a state restored from a crafted snapshot): the last
	// block that fits is handed out, then the space is exhausted, never wrapped.
	e := metadata.New()
	if err := e.Restore(minimalSnapshot(7, math.MaxInt64-1000)); err != nil {
		t.Fatal(err)
	}
	check(t, apply(t, e, &metadata.AllocateProducerIDs{Count: 1001}), &metadata.AllocateProducerIDsResult{Code: metadata.CodeUnknownServerError, First: -1})
	check(t, apply(t, e, &metadata.AllocateProducerIDs{Count: 1000}), &metadata.AllocateProducerIDsResult{First: math.MaxInt64 - 1000, Count: 1000})
	check(t, apply(t, e, &metadata.AllocateProducerIDs{Count: 1}), &metadata.AllocateProducerIDsResult{Code: metadata.CodeUnknownServerError, First: -1})
	check(t, e.NextProducerID(), int64(math.MaxInt64))
}

// minimalSnapshot builds a snapshot by hand (the layout of doc.go): nothing but an applied
// index and the next producer id.
func minimalSnapshot(applied uint64, nextPID int64) []byte {
	body := postcard.AppendUvarint(nil, applied)
	body = postcard.AppendString(body, "")
	body = postcard.AppendZigzag(body, nextPID)
	body = postcard.AppendZigzag(body, 1) // next kafka id
	body = append(body, 0, 0, 0, 0, 0)    // kafka ids, brokers, allowed, topics, groups
	return reseal(body)
}

func TestCommitAndDeleteOffsets(t *testing.T) {
	commit := &metadata.CommitOffsets{Group: "g", Offsets: []metadata.OffsetCommit{
		{Topic: "a", Partition: 0, Offset: 10, LeaderEpoch: 1, Metadata: "m", CommitTimeMs: 100},
		{Topic: "a", Partition: 1, Offset: 20, LeaderEpoch: -1, CommitTimeMs: 100},
		{Topic: "b", Partition: 0, Offset: 5, CommitTimeMs: 100},
	}}
	other := &metadata.CommitOffsets{Group: "h", Offsets: []metadata.OffsetCommit{{Topic: "a", Offset: 1}}}
	run(t, 0, []tcase{
		{name: "commit", cmd: commit, want: &metadata.CommitOffsetsResult{Committed: 3},
			check: func(t *testing.T, s *metadata.State) {
				c, ok := s.CommittedOffset("g", "a", 0)
				check(t, ok, true)
				check(t, c, metadata.CommittedOffset{Offset: 10, LeaderEpoch: 1, Metadata: "m", CommitTimeMs: 100})
				check(t, len(s.GroupOffsets("g")), 3)
				check(t, s.GroupOffsets("g")[1], metadata.GroupOffset{
					TopicPartition:  metadata.TopicPartition{Topic: "a", Partition: 1},
					CommittedOffset: metadata.CommittedOffset{Offset: 20, LeaderEpoch: -1, CommitTimeMs: 100}})
				check(t, s.Groups(), []string{"g"})
			}},
		{name: "later commit overwrites", setup: []metadata.Command{commit},
			cmd: &metadata.CommitOffsets{Group: "g", Offsets: []metadata.OffsetCommit{
				{Topic: "a", Partition: 0, Offset: 11, CommitTimeMs: 200}, {Topic: "a", Partition: 0, Offset: 12, CommitTimeMs: 300}}},
			want: &metadata.CommitOffsetsResult{Committed: 2},
			check: func(t *testing.T, s *metadata.State) {
				c, _ := s.CommittedOffset("g", "a", 0)
				check(t, c, metadata.CommittedOffset{Offset: 12, CommitTimeMs: 300})
			}},
		{name: "a late copy of a writer's older commit is not applied",
			setup: []metadata.Command{&metadata.CommitOffsets{Group: "g", Offsets: []metadata.OffsetCommit{
				{Topic: "a", Offset: 479, CommitTimeMs: 2, Writer: 7, Seq: 2}, {Topic: "b", Offset: 1, Writer: 7, Seq: 2}}}},
			cmd: &metadata.CommitOffsets{Group: "g", Offsets: []metadata.OffsetCommit{
				{Topic: "a", Offset: 453, CommitTimeMs: 3, Writer: 7, Seq: 1}, {Topic: "c", Offset: 9, Writer: 7, Seq: 1}}},
			want: &metadata.CommitOffsetsResult{Committed: 2},
			check: func(t *testing.T, s *metadata.State) {
				c, _ := s.CommittedOffset("g", "a", 0)
				check(t, c, metadata.CommittedOffset{Offset: 479, CommitTimeMs: 2, Writer: 7, Seq: 2})
				c, _ = s.CommittedOffset("g", "c", 0) // nothing newer of the writer there
				check(t, c, metadata.CommittedOffset{Offset: 9, Writer: 7, Seq: 1})
			}},
		{name: "the same stamp again, another writer's and unstamped commits apply in arrival order",
			setup: []metadata.Command{&metadata.CommitOffsets{Group: "g", Offsets: []metadata.OffsetCommit{
				{Topic: "a", Offset: 479, Writer: 7, Seq: 2}, {Topic: "b", Offset: 479, Writer: 7, Seq: 2}, {Topic: "c", Offset: 479, Writer: 7, Seq: 2}}}},
			cmd: &metadata.CommitOffsets{Group: "g", Offsets: []metadata.OffsetCommit{
				{Topic: "a", Offset: 400, Writer: 7, Seq: 2}, {Topic: "b", Offset: 401, Writer: 8, Seq: 1}, {Topic: "c", Offset: 402}}},
			want: &metadata.CommitOffsetsResult{Committed: 3},
			check: func(t *testing.T, s *metadata.State) {
				for i, tp := range []string{"a", "b", "c"} {
					c, _ := s.CommittedOffset("g", tp, 0)
					check(t, c.Offset, int64(400+i))
				}
			}},
		{name: "empty group id", cmd: &metadata.CommitOffsets{Offsets: commit.Offsets}, want: &metadata.CommitOffsetsResult{Code: metadata.CodeInvalidGroupID},
			check: func(t *testing.T, s *metadata.State) { check(t, len(s.Groups()), 0) }},
		{name: "empty commit stores no group", cmd: &metadata.CommitOffsets{Group: "g"}, want: &metadata.CommitOffsetsResult{},
			check: func(t *testing.T, s *metadata.State) { check(t, len(s.Groups()), 0) }},
		{name: "delete offsets", setup: []metadata.Command{commit, other},
			cmd:  &metadata.DeleteOffsets{Group: "g", Partitions: []metadata.TopicPartition{{Topic: "a", Partition: 0}, {Topic: "a", Partition: 0}, {Topic: "zz"}}},
			want: &metadata.DeleteOffsetsResult{Deleted: 1},
			check: func(t *testing.T, s *metadata.State) {
				if _, ok := s.CommittedOffset("g", "a", 0); ok {
					t.Error("deleted offset still there")
				}
				check(t, len(s.GroupOffsets("g")), 2)
				check(t, len(s.GroupOffsets("h")), 1)
			}},
		{name: "delete last offsets drops the group", setup: []metadata.Command{other},
			cmd: &metadata.DeleteOffsets{Group: "h", Partitions: []metadata.TopicPartition{{Topic: "a"}}}, want: &metadata.DeleteOffsetsResult{Deleted: 1},
			check: func(t *testing.T, s *metadata.State) { check(t, len(s.Groups()), 0) }},
		{name: "delete offsets of unknown group", cmd: &metadata.DeleteOffsets{Group: "x"}, want: &metadata.DeleteOffsetsResult{Code: metadata.CodeGroupIDNotFound}},
		{name: "delete groups", setup: []metadata.Command{commit, other},
			cmd: &metadata.DeleteGroups{Groups: []string{"g", "nope", "g"}},
			want: &metadata.DeleteGroupsResult{Groups: []metadata.GroupResult{
				{Group: "g", Deleted: 3}, {Group: "nope", Code: metadata.CodeGroupIDNotFound}, {Group: "g", Code: metadata.CodeGroupIDNotFound}}},
			check: func(t *testing.T, s *metadata.State) {
				check(t, s.Groups(), []string{"h"})
				if _, ok := s.CommittedOffset("g", "a", 0); ok {
					t.Error("offset of a deleted group")
				}
			}},
	})
}

// Deleting a topic keeps its committed offsets, as the group store does today.
func TestDeleteTopicKeepsOffsets(t *testing.T) {
	s := cluster(t, 1)
	mustApply(t, s,
		&metadata.CreateTopics{Topics: []metadata.NewTopic{topic("a", 1, 1, node(1))}},
		&metadata.CommitOffsets{Group: "g", Offsets: []metadata.OffsetCommit{{Topic: "a", Offset: 3}}},
		&metadata.DeleteTopics{Names: []string{"a"}})
	if _, ok := s.CommittedOffset("g", "a", 0); !ok {
		t.Error("offset gone with its topic")
	}
}

func TestApplyIndexAndBadEntries(t *testing.T) {
	s := cluster(t, 2)
	mustApply(t, s, &metadata.CreateTopics{Topics: []metadata.NewTopic{topic("a", 1, 2, node(1))}})
	ref := cluster(t, 2)
	mustApply(t, ref, &metadata.CreateTopics{Topics: []metadata.NewTopic{topic("a", 1, 2, node(1))}})

	i := s.LastApplied()
	if r := s.Apply(i, metadata.EncodeCommand(&metadata.DeleteTopics{Names: []string{"a"}})); !errors.Is(r.(error), metadata.ErrStaleIndex) {
		t.Errorf("stale index: %v", r)
	}
	if r := s.Apply(i-1, metadata.EncodeCommand(&metadata.DeleteTopics{Names: []string{"a"}})); !errors.Is(r.(error), metadata.ErrStaleIndex) {
		t.Errorf("older index: %v", r)
	}
	check(t, s.LastApplied(), i)
	check(t, s.TopicNames(), []string{"a"})

	for _, bad := range []struct {
		data []byte
		want error
	}{
		{[]byte{0}, metadata.ErrUnknownVersion},
		{[]byte{7, 1, 2, 3}, metadata.ErrUnknownVersion},
		{[]byte{1, 42}, metadata.ErrUnknownCommand},
		{[]byte{1, 7, 5}, metadata.ErrMalformed},
		{append(metadata.EncodeCommand(&metadata.DeleteTopics{Names: []string{"a"}}), 9), metadata.ErrMalformed},
	} {
		i++
		r := s.Apply(i, bad.data)
		if err, ok := r.(error); !ok || !errors.Is(err, bad.want) {
			t.Errorf("Apply(%x) = %v, want %v", bad.data, r, bad.want)
		}
		check(t, s.LastApplied(), i) // consumed: the log moves on
	}
	if r := s.Apply(i+1, nil); r != nil {
		t.Errorf("empty entry: %v", r)
	}
	if !sameContent(t, s, ref) {
		t.Error("bad entries changed the state")
	}
	// The next good entry applies normally.
	check(t, codes(s.Apply(i+2, metadata.EncodeCommand(&metadata.DeleteTopics{Names: []string{"a"}})).(*metadata.TopicsResult)), []int16{0})
}

// Accessors return copies: changing them does not change the state.
func TestAccessorsCopy(t *testing.T) {
	s := cluster(t, 1)
	mustApply(t, s, &metadata.CreateTopics{Topics: []metadata.NewTopic{
		{Name: "a", ID: tid(1), Partitions: 1, Configs: map[string]string{"k": "v"}, Owners: owners(1, node(1))}}})
	before := snap(t, s)
	tp, _ := s.Topic("a")
	tp.Configs["k"] = "changed"
	tp.Partitions[0].Epoch = 9
	b, _ := s.Broker(1)
	b.Addr[0] = 'X'
	for _, tp := range s.Topics() {
		tp.Configs["x"] = "y"
	}
	check(t, string(snap(t, s)), string(before))
}
