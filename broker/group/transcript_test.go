package group

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata transcripts with the actual output")

// Transcript tests: each file in testdata/*.txt is a sequence of blocks
//
//	<command> key=value ...
//	----
//	<expected output lines>
//	<blank line>
//
// Lines starting with # between blocks are comments. Run with -rewrite to regenerate, review
// the diff, commit. Commands (times are offsets from the start of the transcript):
//
//	config  initial-delay=D min-session=D
//	join    t=TOK g=GROUP c=CLIENT [m=MEMBER] [i=INSTANCE] [type=consumer] [p=NAME:META,...]
//	        [s=SESSION] [r=REBALANCE] [v4]
//	sync    t=TOK g=GROUP m=MEMBER [i=INSTANCE] gen=N [a=MEMBER:BYTES,...]
//	hb      t=TOK g=GROUP m=MEMBER [i=INSTANCE] gen=N
//	leave   t=TOK g=GROUP [m=MEMBER] [i=INSTANCE]
//	commit  t=TOK g=GROUP [m=MEMBER] [i=INSTANCE] [gen=N] o=TOPIC/PART=OFFSET,...
//	fetch   t=TOK g=GROUP [o=TOPIC/PART,...]
//	odelete t=TOK g=GROUP o=TOPIC/PART,...
//	delete  t=TOK g=GROUP,...
//	list    t=TOK [states=S,...]
//	describe t=TOK g=GROUP,...
//	advance D          (moves the clock, then runs Tick; prints what fired)
//	move               (a new coordinator takes over: a new Machine from the durable
//	                    records, Snapshot, and RestoreMembers; parked requests are lost)
//	state   g=GROUP    (dumps the group)
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runTranscript(t, f) })
	}
}

type block struct {
	comments []string
	cmd      string
	expected string
}

func parseTranscript(t *testing.T, data string) []block {
	var blocks []block
	lines := strings.Split(data, "\n")
	var cur block
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.TrimSpace(l) == "" && cur.cmd == "":
			if len(cur.comments) > 0 {
				cur.comments = append(cur.comments, "")
			}
		case strings.HasPrefix(l, "#") && cur.cmd == "":
			cur.comments = append(cur.comments, l)
		default:
			cur.cmd = l
			i++
			if i >= len(lines) || lines[i] != "----" {
				t.Fatalf("line %d: expected ---- after %q", i+1, l)
			}
			var exp []string
			for i++; i < len(lines) && lines[i] != ""; i++ {
				exp = append(exp, lines[i])
			}
			cur.expected = strings.Join(exp, "\n")
			blocks = append(blocks, cur)
			cur = block{}
		}
	}
	return blocks
}

func runTranscript(t *testing.T, path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := parseTranscript(t, string(raw))
	h := newHarness(MachineConfig{InitialRebalanceDelay: -1, MinSessionTimeout: time.Second})
	var out strings.Builder
	for _, b := range blocks {
		got := h.run(t, b.cmd)
		for _, c := range b.comments {
			out.WriteString(c + "\n")
		}
		fmt.Fprintf(&out, "%s\n----\n%s\n\n", b.cmd, got)
		if !*rewrite && got != b.expected {
			t.Errorf("%s: %s\ngot:\n%s\nwant:\n%s", path, b.cmd, got, b.expected)
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type harness struct {
	m     *Machine
	start time.Time
	now   time.Time
	ids   map[string]int
}

func newHarness(cfg MachineConfig) *harness {
	h := &harness{start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ids: map[string]int{}}
	h.now = h.start
	h.setConfig(cfg)
	return h
}

func (h *harness) setConfig(cfg MachineConfig) {
	cfg.NewMemberID = func(c string) string { h.ids[c]++; return fmt.Sprintf("%s-%d", c, h.ids[c]) }
	h.m = NewMachine(cfg)
}

func parseArgs(t *testing.T, fields []string) map[string]string {
	args := map[string]string{}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		args[k] = v
	}
	return args
}

func (h *harness) run(t *testing.T, cmd string) string {
	t.Helper()
	fields := strings.Fields(cmd)
	a := parseArgs(t, fields[1:])
	dur := func(k string, def time.Duration) time.Duration {
		if v, ok := a[k]; ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			return d
		}
		return def
	}
	num := func(k string, def int64) int64 {
		if v, ok := a[k]; ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			return n
		}
		return def
	}
	tok := Token(num("t", 0))
	var outs []Output
	switch fields[0] {
	case "config":
		h.setConfig(MachineConfig{
			InitialRebalanceDelay: dur("initial-delay", -1), MinSessionTimeout: dur("min-session", time.Second),
		})
		return "ok"
	case "advance":
		// Like a real clock: every timer fires at its own deadline on the way to the target.
		target := h.now.Add(mustDur(t, fields[1]))
		for {
			d, ok := h.m.NextDeadline()
			if !ok || d.After(target) {
				break
			}
			h.now = maxTime(h.now, d)
			outs = append(outs, h.m.Tick(h.now)...)
		}
		h.now = target
		outs = append(outs, h.m.Tick(h.now)...)
	case "join":
		req := &brokerop.JoinGroupReq{
			Group: a["g"], MemberID: a["m"], InstanceID: a["i"], ClientID: a["c"], ClientHost: "/127.0.0.1",
			ProtocolType: "consumer", SessionTimeoutMs: int32(dur("s", 10*time.Second).Milliseconds()),
			RebalanceTimeoutMs: int32(dur("r", 20*time.Second).Milliseconds()),
		}
		if v, ok := a["type"]; ok {
			req.ProtocolType = v
		}
		_, req.RequireKnownMemberID = a["v4"]
		protos := "range:x"
		if v, ok := a["p"]; ok {
			protos = v
		}
		for _, p := range strings.Split(protos, ",") {
			name, meta, _ := strings.Cut(p, ":")
			md := []byte(meta)
			if topics, ok := strings.CutPrefix(meta, "sub="); ok {
				md = consumerMeta(strings.Split(topics, "+")...)
			}
			req.Protocols = append(req.Protocols, brokerop.GroupProtocol{Name: name, Metadata: md})
		}
		outs = h.m.JoinGroup(h.now, tok, req)
	case "sync":
		req := &brokerop.SyncGroupReq{Group: a["g"], MemberID: a["m"], InstanceID: a["i"], Generation: int32(num("gen", -1))}
		if v, ok := a["a"]; ok {
			for _, p := range strings.Split(v, ",") {
				mid, asg, _ := strings.Cut(p, ":")
				req.Assignments = append(req.Assignments, brokerop.SyncGroupAssignment{MemberID: mid, Assignment: []byte(asg)})
			}
		}
		outs = h.m.SyncGroup(h.now, tok, req)
	case "hb":
		outs = h.m.Heartbeat(h.now, tok, &brokerop.HeartbeatReq{Group: a["g"], MemberID: a["m"], InstanceID: a["i"], Generation: int32(num("gen", -1))})
	case "leave":
		outs = h.m.LeaveGroup(h.now, tok, &brokerop.LeaveGroupReq{Group: a["g"], Members: []brokerop.LeaveGroupMember{{MemberID: a["m"], InstanceID: a["i"]}}})
	case "commit":
		req := &brokerop.OffsetCommitReq{Group: a["g"], MemberID: a["m"], InstanceID: a["i"], Generation: int32(num("gen", -1))}
		for _, o := range strings.Split(a["o"], ",") {
			tpart, off, _ := strings.Cut(o, "=")
			topic, part := splitTP(t, tpart)
			n, _ := strconv.ParseInt(off, 10, 64)
			req.Topics = append(req.Topics, brokerop.OffsetCommitTopic{Topic: topic, Partitions: []brokerop.OffsetCommitPartition{{Partition: part, Offset: n, LeaderEpoch: -1}}})
		}
		outs = h.m.OffsetCommit(h.now, tok, req)
	case "fetch":
		req := &brokerop.OffsetFetchReq{Group: a["g"]}
		if v, ok := a["o"]; ok {
			for _, o := range strings.Split(v, ",") {
				topic, part := splitTP(t, o)
				req.Topics = append(req.Topics, brokerop.OffsetFetchTopic{Topic: topic, Partitions: []int32{part}})
			}
		}
		outs = h.m.OffsetFetch(h.now, tok, req)
	case "odelete":
		req := &brokerop.OffsetDeleteReq{Group: a["g"]}
		for _, o := range strings.Split(a["o"], ",") {
			topic, part := splitTP(t, o)
			req.Topics = append(req.Topics, brokerop.OffsetDeleteTopic{Topic: topic, Partitions: []int32{part}})
		}
		outs = h.m.OffsetDelete(h.now, tok, req)
	case "delete":
		outs = h.m.DeleteGroups(h.now, tok, &brokerop.DeleteGroupsReq{Groups: strings.Split(a["g"], ",")})
	case "list":
		req := &brokerop.ListGroupsReq{}
		if v, ok := a["states"]; ok {
			req.StatesFilter = strings.Split(v, ",")
		}
		outs = h.m.ListGroups(h.now, tok, req)
	case "describe":
		outs = h.m.DescribeGroups(h.now, tok, &brokerop.DescribeGroupsReq{Groups: strings.Split(a["g"], ",")})
	case "state":
		return h.dump(a["g"])
	case "move":
		recs := h.m.Snapshot()
		h.m = NewMachine(h.m.cfg)
		h.m.Apply(recs)
		h.m.RestoreMembers(h.now)
		return "ok"
	default:
		t.Fatalf("unknown command %q", cmd)
	}
	var lines []string
	for _, o := range outs {
		lines = append(lines, formatOutput(o))
		if len(o.Records) > 0 {
			h.m.Apply(o.Records)
		}
	}
	if len(lines) == 0 {
		return fmt.Sprintf("(nothing) @%s", h.now.Sub(h.start))
	}
	return strings.Join(lines, "\n")
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func mustDur(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func splitTP(t *testing.T, s string) (string, int32) {
	topic, p, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(p)
	if !ok || err != nil {
		t.Fatalf("bad topic/partition %q", s)
	}
	return topic, int32(n)
}

var errNames = map[int16]string{
	errNone: "OK", errUnknownServer: "UNKNOWN_SERVER_ERROR", errOffsetMetadataTooLarge: "OFFSET_METADATA_TOO_LARGE",
	errCoordinatorNotAvailable: "COORDINATOR_NOT_AVAILABLE", errIllegalGeneration: "ILLEGAL_GENERATION",
	errInconsistentGroupProto: "INCONSISTENT_GROUP_PROTOCOL", errInvalidGroupID: "INVALID_GROUP_ID",
	errUnknownMemberID: "UNKNOWN_MEMBER_ID", errInvalidSessionTimeout: "INVALID_SESSION_TIMEOUT",
	errRebalanceInProgress: "REBALANCE_IN_PROGRESS", errNonEmptyGroup: "NON_EMPTY_GROUP",
	errGroupIDNotFound: "GROUP_ID_NOT_FOUND", errMemberIDRequired: "MEMBER_ID_REQUIRED",
	errFencedInstanceID: "FENCED_INSTANCE_ID", errGroupSubscribedToTopic: "GROUP_SUBSCRIBED_TO_TOPIC",
}

func en(c int16) string {
	if n, ok := errNames[c]; ok {
		return n
	}
	return strconv.Itoa(int(c))
}

func formatOutput(o Output) string {
	var s string
	switch r := o.Resp.(type) {
	case *brokerop.JoinGroupResp:
		s = fmt.Sprintf("join %s gen=%d member=%s", en(r.ErrorCode), r.Generation, r.MemberID)
		if r.ErrorCode == errNone {
			s += fmt.Sprintf(" proto=%s leader=%s", r.Protocol, r.LeaderID)
			if len(r.Members) > 0 {
				var ms []string
				for _, m := range r.Members {
					ms = append(ms, fmt.Sprintf("%s:%q", m.MemberID, m.Metadata))
				}
				s += " members=[" + strings.Join(ms, " ") + "]"
			}
		}
	case *brokerop.SyncGroupResp:
		s = fmt.Sprintf("sync %s", en(r.ErrorCode))
		if r.ErrorCode == errNone {
			s += fmt.Sprintf(" assignment=%q", r.Assignment)
		}
	case *brokerop.HeartbeatResp:
		s = "hb " + en(r.ErrorCode)
	case *brokerop.LeaveGroupResp:
		s = "leave " + en(r.ErrorCode)
		for _, m := range r.Members {
			s += fmt.Sprintf(" %s/%s=%s", m.MemberID, m.InstanceID, en(m.ErrorCode))
		}
	case *brokerop.OffsetCommitResp:
		s = "commit"
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				s += fmt.Sprintf(" %s/%d=%s", t.Topic, p.Partition, en(p.ErrorCode))
			}
		}
	case *brokerop.OffsetFetchResp:
		s = "fetch " + en(r.ErrorCode)
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				s += fmt.Sprintf(" %s/%d=%d", t.Topic, p.Partition, p.Offset)
			}
		}
	case *brokerop.OffsetDeleteResp:
		s = "odelete " + en(r.ErrorCode)
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				s += fmt.Sprintf(" %s/%d=%s", t.Topic, p.Partition, en(p.ErrorCode))
			}
		}
	case *brokerop.DeleteGroupsResp:
		s = "delete"
		for _, g := range r.Groups {
			s += fmt.Sprintf(" %s=%s", g.Group, en(g.ErrorCode))
		}
	case *brokerop.ListGroupsResp:
		s = "list"
		for _, g := range r.Groups {
			s += fmt.Sprintf(" %s(%s,%s)", g.Group, g.State, g.ProtocolType)
		}
	case *brokerop.DescribeGroupsResp:
		var parts []string
		for _, g := range r.Groups {
			p := fmt.Sprintf("%s %s state=%s type=%s proto=%s", g.Group, en(g.ErrorCode), g.State, g.ProtocolType, g.Protocol)
			for _, m := range g.Members {
				p += fmt.Sprintf(" [%s inst=%s client=%s meta=%q asg=%q]", m.MemberID, m.InstanceID, m.ClientID, m.Metadata, m.Assignment)
			}
			parts = append(parts, p)
		}
		s = "describe " + strings.Join(parts, "; ")
	case nil:
		s = "(no answer)"
	default:
		s = fmt.Sprintf("%T", r)
	}
	line := fmt.Sprintf("t%d: %s", o.Token, s)
	for _, r := range o.Records {
		switch r.Kind {
		case KindCommit:
			line += fmt.Sprintf("\n  persist commit %s %s/%d=%d", r.Group, r.Topic, r.Partition, r.Offset)
		case KindDeleteOffset:
			line += fmt.Sprintf("\n  persist delete-offset %s %s/%d", r.Group, r.Topic, r.Partition)
		case KindDeleteGroup:
			line += fmt.Sprintf("\n  persist delete-group %s", r.Group)
		case KindMembers:
			ms := r.Members
			line += fmt.Sprintf("\n  persist members %s gen=%d %s", r.Group, ms.Generation, ms.State)
			if ms.Leader != "" {
				line += " leader=" + ms.Leader
			}
			for _, mr := range ms.Members {
				line += " " + mr.ID
				if mr.Assignment != nil {
					line += fmt.Sprintf(":%q", mr.Assignment)
				}
			}
		}
	}
	return line
}

func (h *harness) dump(id string) string {
	g := h.m.groups[id]
	if g == nil {
		return "no group"
	}
	s := fmt.Sprintf("%s gen=%d proto=%s leader=%s", g.state, g.generation, g.protocol, g.leader)
	if !g.deadline.IsZero() {
		s += fmt.Sprintf(" deadline=@%s", g.deadline.Sub(h.start))
	}
	for _, id := range g.order {
		m := g.members[id]
		s += fmt.Sprintf("\n  %s", id)
		if m.instance != "" {
			s += " inst=" + m.instance
		}
		switch {
		case m.joinWait:
			s += fmt.Sprintf(" awaiting-join(t%d)", m.joinTok)
		case m.syncWait:
			s += fmt.Sprintf(" awaiting-sync(t%d)", m.syncTok)
		default:
			s += fmt.Sprintf(" expires=@%s", m.expires.Sub(h.start))
		}
		if m.assignment != nil {
			s += fmt.Sprintf(" asg=%q", m.assignment)
		}
	}
	var pend []string
	for id := range g.pending {
		pend = append(pend, id)
	}
	sort.Strings(pend)
	if len(pend) > 0 {
		s += "\n  pending " + strings.Join(pend, ",")
	}
	return s
}

// consumerMeta is a consumer-protocol subscription to topics, for OffsetDelete tests.
func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}
