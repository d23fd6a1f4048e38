// Package status serves the gateway's status page: plain server-rendered HTML (no scripts, no
// assets from the internet) built from Kafka requests the gateway answers to itself
// (gateway.Server.Local), so it shows what a Kafka client would see: brokers and the
// controller, topics with every partition's leader, replicas, in-sync replicas and offsets, and
// consumer groups with their members and lag; and, when the process has a mesh endpoint
// (Info.Peers), its mesh peers with the path each is reached by (direct or relay), the remote
// address and the RTT; and, when the process keeps its recent traces (Info.Traces,
// telemetry.Recent), each of the last ones drawn as a waterfall (a bar per span on the
// trace's timeline, children indented under their parent). It refreshes itself every 5
// seconds.
package status

import (
	"context"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/telemetry"
)

// Source answers Kafka requests in process (gateway.Server.Local).
type Source interface {
	Local(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
}

// Info is what the page says about the process itself.
type Info struct {
	Role   string // e.g. "gateway"
	Mode   string // e.g. "embedded broker" or "mesh: 3 brokers"
	NodeID string // mesh NodeId, if any
	Kafka  string // host:port clients use
	// Peers, if set (a process with a mesh endpoint), lists the mesh peers it is connected
	// to, shown in a "Mesh peers" section. Nil: no mesh endpoint, no section.
	Peers func() []MeshPeer
	// Traces, if set, returns the process's recent traces (telemetry.Recent), drawn as
	// waterfalls in a "Recent traces" section. Nil: no section.
	Traces func() []telemetry.TraceView
}

// MeshPeer is one mesh node the process has live connections to.
type MeshPeer struct {
	NodeID string        // the peer's NodeId
	Name   string        // what it is, if known (e.g. "broker 2"); may be empty
	ALPNs  []string      // protocols of the live connections
	Path   string        // "direct", "relay" or "unknown"
	Remote string        // the peer's UDP address (direct) or relay URL (relay)
	RTT    time.Duration // QUIC smoothed round-trip time; 0 before a sample
}

// RTTString is the RTT for display ("–" before a sample).
func (p MeshPeer) RTTString() string {
	if p.RTT <= 0 {
		return "–"
	}
	return p.RTT.Round(10 * time.Microsecond).String()
}

// Handler serves the page at "/".
func Handler(src Source, info func() Info) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		p := collect(ctx, src)
		p.Info = info()
		if p.Info.Traces != nil {
			p.HasTraces = true
			p.Traces = waterfalls(p.Info.Traces(), maxTracesShown)
		}
		if p.Info.Peers != nil {
			p.HasMesh = true
			p.Peers = p.Info.Peers()
			slices.SortFunc(p.Peers, func(a, b MeshPeer) int { return strings.Compare(a.NodeID, b.NodeID) })
		}
		p.Now = time.Now().UTC().Format(time.RFC3339)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.Execute(w, p); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
}

type pageData struct {
	Info       Info
	HasTraces  bool
	Traces     []waterfall
	Now        string
	ClusterID  string
	Controller int32
	Brokers    []broker
	Topics     []topic
	Groups     []group
	HasMesh    bool
	Peers      []MeshPeer
	Errors     []string
}

type broker struct {
	ID   int32
	Addr string
	Rack string
}

type partition struct {
	ID               int32
	Leader, Epoch    int32
	Replicas, ISR    string
	Offline          string
	Start, End, Size int64
	Err              string
}

type topic struct {
	Name       string
	Partitions []partition
	Records    int64
	Err        string
}

type group struct {
	ID, State, Protocol string
	Members             int
	Lag                 int64
	Offsets             []groupOffset
}

type groupOffset struct {
	Topic     string
	Partition int32
	Committed int64
	End       int64
	Lag       int64
}

func ids(v []int32) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += ","
		}
		s += strconv.Itoa(int(x))
	}
	return s
}

func collect(ctx context.Context, src Source) pageData {
	var p pageData
	fail := func(what string, err error) { p.Errors = append(p.Errors, what+": "+err.Error()) }
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.AllowAutoTopicCreation = false
	md, ok := ask[*kmsg.MetadataResponse](ctx, src, mreq, "metadata", fail)
	if !ok {
		return p
	}
	if md.ClusterID != nil {
		p.ClusterID = *md.ClusterID
	}
	p.Controller = md.ControllerID
	for _, b := range md.Brokers {
		rack := ""
		if b.Rack != nil {
			rack = *b.Rack
		}
		p.Brokers = append(p.Brokers, broker{ID: b.NodeID, Addr: b.Host + ":" + strconv.Itoa(int(b.Port)), Rack: rack})
	}
	ends := map[string]map[int32]int64{}
	lreq := kmsg.NewPtrListOffsetsRequest()
	lreq.ReplicaID = -1
	for _, t := range md.Topics {
		if t.Topic == nil {
			continue
		}
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = *t.Topic
		for _, pt := range t.Partitions {
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition = pt.Partition
			lp.CurrentLeaderEpoch = -1
			lp.Timestamp = -1
			lt.Partitions = append(lt.Partitions, lp)
		}
		lreq.Topics = append(lreq.Topics, lt)
	}
	starts := map[string]map[int32]int64{}
	for i, ts := range []int64{-1, -2} {
		for ti := range lreq.Topics {
			for pi := range lreq.Topics[ti].Partitions {
				lreq.Topics[ti].Partitions[pi].Timestamp = ts
			}
		}
		r, ok := ask[*kmsg.ListOffsetsResponse](ctx, src, lreq, "list offsets", fail)
		if !ok {
			break
		}
		into := ends
		if i == 1 {
			into = starts
		}
		for _, t := range r.Topics {
			into[t.Topic] = map[int32]int64{}
			for _, pt := range t.Partitions {
				if pt.ErrorCode == 0 {
					into[t.Topic][pt.Partition] = pt.Offset
				}
			}
		}
	}
	for _, t := range md.Topics {
		if t.Topic == nil || t.IsInternal {
			continue
		}
		tp := topic{Name: *t.Topic}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			tp.Err = err.Error()
		}
		for _, pt := range t.Partitions {
			part := partition{ID: pt.Partition, Leader: pt.Leader, Epoch: pt.LeaderEpoch, Replicas: ids(pt.Replicas), ISR: ids(pt.ISR),
				Offline: ids(pt.OfflineReplicas), Start: starts[tp.Name][pt.Partition], End: ends[tp.Name][pt.Partition]}
			part.Size = part.End - part.Start
			tp.Records += part.Size
			if err := kerr.ErrorForCode(pt.ErrorCode); err != nil {
				part.Err = err.Error()
			}
			tp.Partitions = append(tp.Partitions, part)
		}
		slices.SortFunc(tp.Partitions, func(a, b partition) int { return int(a.ID - b.ID) })
		p.Topics = append(p.Topics, tp)
	}
	slices.SortFunc(p.Topics, func(a, b topic) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	p.Groups = groups(ctx, src, ends, fail)
	return p
}

// ask sends req to src and returns the answer as an R; a failed call is reported to fail
// (as what) and ok is false.
func ask[R kmsg.Response](ctx context.Context, src Source, req kmsg.Request, what string, fail func(string, error)) (r R, ok bool) {
	raw, err := src.Local(ctx, req)
	if err != nil {
		fail(what, err)
		return r, false
	}
	return raw.(R), true
}

func groups(ctx context.Context, src Source, ends map[string]map[int32]int64, fail func(string, error)) []group {
	lg, ok := ask[*kmsg.ListGroupsResponse](ctx, src, kmsg.NewPtrListGroupsRequest(), "list groups", fail)
	if !ok {
		return nil
	}
	var names []string
	for _, g := range lg.Groups {
		names = append(names, g.Group)
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	dreq := kmsg.NewPtrDescribeGroupsRequest()
	dreq.Groups = names
	dg, ok := ask[*kmsg.DescribeGroupsResponse](ctx, src, dreq, "describe groups", fail)
	if !ok {
		return nil
	}
	var out []group
	for _, d := range dg.Groups {
		g := group{ID: d.Group, State: d.State, Protocol: d.Protocol, Members: len(d.Members)}
		// OffsetFetch names the group in Group up to v7 and in Groups from v8 on: fill both,
		// and read the answer from whichever the version used. No topics: all of them.
		oreq := kmsg.NewPtrOffsetFetchRequest()
		oreq.Group = d.Group
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = d.Group
		oreq.Groups = append(oreq.Groups, rg)
		if resp, ok := ask[*kmsg.OffsetFetchResponse](ctx, src, oreq, "offset fetch "+d.Group, fail); ok {
			type fetched struct {
				Topic      string
				Partitions []kmsg.OffsetFetchResponseTopicPartition
			}
			var topics []fetched
			for _, t := range resp.Topics {
				topics = append(topics, fetched{t.Topic, t.Partitions})
			}
			for _, rg := range resp.Groups {
				for _, t := range rg.Topics {
					var ps []kmsg.OffsetFetchResponseTopicPartition
					for _, pt := range t.Partitions {
						p := kmsg.NewOffsetFetchResponseTopicPartition()
						p.Partition, p.Offset = pt.Partition, pt.Offset
						ps = append(ps, p)
					}
					topics = append(topics, fetched{t.Topic, ps})
				}
			}
			for _, t := range topics {
				for _, pt := range t.Partitions {
					if pt.Offset < 0 {
						continue
					}
					end := ends[t.Topic][pt.Partition]
					lag := max(end-pt.Offset, 0)
					g.Lag += lag
					g.Offsets = append(g.Offsets, groupOffset{Topic: t.Topic, Partition: pt.Partition, Committed: pt.Offset, End: end, Lag: lag})
				}
			}
		}
		out = append(out, g)
	}
	return out
}

var page = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>meshkafka {{.Info.Role}} status</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em} h2{font-size:1.1em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.3em 0} td,th{padding:.2em .7em;border:1px solid #ddd;text-align:left}
th{background:#f4f4f4} .num{text-align:right;font-variant-numeric:tabular-nums} .err{color:#b00}
.meta{color:#555} .ok{color:#070} .lag{color:#b60} .path.direct{color:#070} .path.relay{color:#b60}
td.bars{width:40em;padding:.2em 0} .bar{height:.9em;background:#4a7fd0;border-radius:2px} tr.failed .bar{background:#c33}
</style></head><body>
<h1>meshkafka {{.Info.Role}}</h1>
<div class="meta">mode: <b id="mode">{{.Info.Mode}}</b>{{if .Info.NodeID}} · node id <code>{{.Info.NodeID}}</code>{{end}} · Kafka at <code>{{.Info.Kafka}}</code> · cluster <code>{{.ClusterID}}</code> · {{.Now}}</div>
{{range .Errors}}<p class="err">{{.}}</p>{{end}}
<h2>Brokers</h2>
<table id="brokers"><tr><th>id</th><th>address</th><th>rack</th><th>role</th></tr>
{{range .Brokers}}<tr><td class="num">{{.ID}}</td><td>{{.Addr}}</td><td>{{.Rack}}</td><td>{{if eq .ID $.Controller}}controller{{end}}</td></tr>{{end}}
</table>
{{if .HasMesh}}<h2>Mesh peers</h2>
{{if not .Peers}}<p>No mesh connections.</p>{{else}}
<table id="peers"><tr><th>node id</th><th>what</th><th>path</th><th>remote</th><th>rtt</th><th>protocols</th></tr>
{{range .Peers}}<tr class="peer"><td><code>{{.NodeID}}</code></td><td>{{.Name}}</td><td class="path {{.Path}}">{{.Path}}</td><td>{{.Remote}}</td><td class="num">{{.RTTString}}</td><td>{{range $i, $a := .ALPNs}}{{if $i}}, {{end}}{{$a}}{{end}}</td></tr>{{end}}
</table>{{end}}{{end}}
<h2>Topics</h2>
{{if not .Topics}}<p>No topics yet.</p>{{end}}
{{range .Topics}}<h3 class="topic">{{.Name}} <span class="meta">({{len .Partitions}} partitions, {{.Records}} records)</span></h3>
{{if .Err}}<p class="err">{{.Err}}</p>{{end}}
<table class="partitions"><tr><th>partition</th><th>leader</th><th>epoch</th><th>replicas</th><th>in sync</th><th>offline</th><th>start</th><th>end</th><th>records</th></tr>
{{range .Partitions}}<tr><td class="num">{{.ID}}</td><td class="num">{{.Leader}}</td><td class="num">{{.Epoch}}</td><td>{{.Replicas}}</td><td>{{.ISR}}</td><td class="err">{{.Offline}}</td><td class="num">{{.Start}}</td><td class="num">{{.End}}</td><td class="num">{{.Size}}</td></tr>{{if .Err}}<tr><td colspan="9" class="err">{{.Err}}</td></tr>{{end}}{{end}}
</table>{{end}}
<h2>Consumer groups</h2>
{{if not .Groups}}<p>No consumer groups yet.</p>{{end}}
{{range .Groups}}<h3 class="group">{{.ID}} <span class="meta">{{.State}}, {{.Members}} members</span> · lag <span class="{{if eq .Lag 0}}ok{{else}}lag{{end}}" data-lag="{{.Lag}}">{{.Lag}}</span></h3>
<table><tr><th>topic</th><th>partition</th><th>committed</th><th>end</th><th>lag</th></tr>
{{range .Offsets}}<tr><td>{{.Topic}}</td><td class="num">{{.Partition}}</td><td class="num">{{.Committed}}</td><td class="num">{{.End}}</td><td class="num">{{.Lag}}</td></tr>{{end}}
</table>{{end}}
{{if .HasTraces}}<h2>Recent traces</h2>
{{if not .Traces}}<p>No traces recorded yet (a few requests a second are sampled).</p>{{end}}
{{range .Traces}}<h3 class="trace">{{.Root}} <span class="meta">{{.Duration}} · {{.When}} · trace <code>{{.ID}}</code></span></h3>
<table class="waterfall"><tr><th>span</th><th class="bars">timeline</th><th>duration</th></tr>
{{range .Rows}}<tr class="span{{if .Error}} failed{{end}}"><td style="padding-left:{{.Indent}}em">{{.Name}}{{if .Remote}} <span class="meta">(from another process)</span>{{end}}{{if .Error}} <span class="err">{{.Error}}</span>{{end}}</td><td class="bars"><div class="bar" style="margin-left:{{.Left}}%;width:{{.Width}}%"></div></td><td class="num">{{.Duration}}</td></tr>{{end}}
</table>{{end}}{{end}}
</body></html>
`))

// maxTracesShown bounds the waterfalls on the page.
const maxTracesShown = 10

// waterfall is one trace laid out for the page: a row per span, indented by depth, with a
// bar placed on the trace's timeline (percentages of its duration).
type waterfall struct {
	ID, Root, Duration, When string
	Rows                     []waterfallRow
}

type waterfallRow struct {
	Name, Duration, Error string
	Indent                int
	Left, Width           string // CSS percentages
	Remote                bool
}

// apiOf names the Kafka API of a span with a kafka.api_key attribute (" Produce"), else "".
func apiOf(attrs []string) string {
	for _, a := range attrs {
		if v, ok := strings.CutPrefix(a, "kafka.api_key="); ok {
			if k, err := strconv.Atoi(v); err == nil {
				if name := kmsg.NameForKey(int16(k)); name != "" {
					return " " + name
				}
			}
		}
	}
	return ""
}

// waterfalls lays out at most n traces.
func waterfalls(traces []telemetry.TraceView, n int) []waterfall {
	var out []waterfall
	for _, tv := range traces {
		if len(out) == n {
			break
		}
		if len(tv.Spans) == 0 {
			continue
		}
		total := tv.End.Sub(tv.Start)
		depth := map[string]int{}
		w := waterfall{ID: tv.ID, Duration: total.Round(time.Microsecond).String(), When: tv.Start.UTC().Format("15:04:05.000")}
		for _, sp := range tv.Spans { // start order: a parent before its children
			d := 0
			if pd, ok := depth[sp.ParentID]; ok {
				d = pd + 1
			}
			depth[sp.SpanID] = d
			if w.Root == "" && d == 0 {
				w.Root = sp.Name + apiOf(sp.Attrs)
			}
			left, width := 0.0, 100.0
			if total > 0 {
				left = float64(sp.Start.Sub(tv.Start)) / float64(total) * 100
				width = max(float64(sp.End.Sub(sp.Start))/float64(total)*100, 0.5)
			}
			w.Rows = append(w.Rows, waterfallRow{Name: sp.Name, Duration: sp.End.Sub(sp.Start).Round(time.Microsecond).String(),
				Error: sp.Error, Indent: 1 + 2*d, Left: strconv.FormatFloat(left, 'f', 2, 64), Width: strconv.FormatFloat(width, 'f', 2, 64),
				Remote: sp.RemoteParent})
		}
		if w.Root == "" {
			w.Root = tv.Spans[0].Name
		}
		out = append(out, w)
	}
	return out
}

// GroupLag is one consumer group's lag on one topic: the sum over the partitions it has
// committed offsets for of the end offset minus the committed offset.
type GroupLag struct {
	Group, Topic string
	Lag          int64
}

// Lags makes the page's requests (Metadata, ListOffsets, the groups and their committed
// offsets) and returns every group's lag per topic, sorted by group then topic (the
// consumer-lag metric).
func Lags(ctx context.Context, src Source) []GroupLag {
	var out []GroupLag
	for _, g := range collect(ctx, src).Groups {
		byTopic := map[string]int64{}
		var topics []string
		for _, o := range g.Offsets {
			if _, ok := byTopic[o.Topic]; !ok {
				topics = append(topics, o.Topic)
			}
			byTopic[o.Topic] += o.Lag
		}
		slices.Sort(topics)
		for _, t := range topics {
			out = append(out, GroupLag{Group: g.ID, Topic: t, Lag: byTopic[t]})
		}
	}
	return out
}
