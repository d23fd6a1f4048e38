package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/controller"
	"github.com/meshkafka/meshkafka/internal/porttest"
)

// Three brokers started with the same -quorum-seeds form one metadata quorum; `broker quorum
// status` reads it from a broker's -admin API, and `broker quorum remove` takes a broker out.
func TestQuorumFlagsAndAdmin(t *testing.T) {
	noenv := func(string) string { return "" }
	type b struct{ dir, id, bind, admin string }
	var bs []b
	var seeds []string
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		var out bytes.Buffer
		if err := run(context.Background(), []string{"-data", dir, "-print-node-id"}, noenv, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		x := b{dir: dir, id: strings.TrimSpace(out.String()), bind: porttest.Addr(t),
			admin: porttest.Addr(t)}
		bs = append(bs, x)
		seeds = append(seeds, x.id+"@"+x.bind)
	}
	for _, x := range bs {
		runBroker(t, []string{"-data", x.dir, "-bind", x.bind, "-addr-file", filepath.Join(x.dir, "addr"),
			"-quorum-seeds", strings.Join(seeds, ","), "-admin", x.admin}, noenv)
	}
	status := func(admin string) (controller.QuorumStatus, error) {
		var out bytes.Buffer
		var st controller.QuorumStatus
		if err := run(context.Background(), []string{"quorum", "status", "-admin", admin}, noenv, &out, io.Discard); err != nil {
			return st, err
		}
		err := json.Unmarshal(out.Bytes(), &st)
		return st, err
	}
	var st controller.QuorumStatus
	for i := 0; ; i++ {
		var err error
		st, err = status(bs[0].admin)
		nv := 0
		for _, m := range st.Brokers {
			if m.Voter {
				nv++
			}
		}
		if err == nil && len(st.Brokers) == 3 && nv == 3 && st.LeaderNodeID != "" {
			break
		}
		if i == 1200 {
			t.Fatalf("no quorum of three: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Decommission drains a broker (here it holds no replica: there is no topic) and -wait
	// reads the status until it holds none.
	var dout bytes.Buffer
	if err := run(context.Background(), []string{"quorum", "decommission", "-wait", "-admin", bs[1].admin, bs[2].id}, noenv, &dout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dout.String(), "drained: "+bs[2].id) {
		t.Errorf("decommission -wait said %q", dout.String())
	}
	if err := run(context.Background(), []string{"quorum", "decommission", "-admin", bs[1].admin, "nonsense"}, noenv, io.Discard, io.Discard); err == nil {
		t.Error("decommission of a bad NodeId succeeded")
	}
	// Remove the leader, through its own admin API: it hands the leadership over first.
	victim := -1
	for i, x := range bs {
		if x.id == st.LeaderNodeID {
			victim = i
		}
	}
	if err := run(context.Background(), []string{"quorum", "remove", "-admin", bs[victim].admin, bs[victim].id}, noenv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	via := (victim + 1) % 3
	for i := 0; ; i++ {
		st, err := status(bs[via].admin)
		if err == nil && len(st.Brokers) == 2 && st.LeaderNodeID != "" && st.LeaderNodeID != bs[victim].id {
			break
		}
		if i == 1200 {
			t.Fatalf("broker not removed: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A bad command says how to use it.
	if err := run(context.Background(), []string{"quorum", "remove", "-admin", bs[via].admin}, noenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("remove without a NodeId: %v", err)
	}
	if _, err := parse([]string{"-admin", "0.0.0.0:9644"}, noenv, io.Discard); err == nil {
		t.Fatal("a non-loopback -admin was accepted")
	}
}

func TestParseReplicationFlags(t *testing.T) {
	noenv := func(string) string { return "" }
	o, err := parse([]string{"-rack", "r1", "-default-replication-factor", "2"}, noenv, io.Discard)
	if err != nil || o.rack != "r1" || o.defaultRF != 2 {
		t.Fatalf("flags: %+v, %v", o, err)
	}
	o, err = parse(nil, func(k string) string {
		return map[string]string{"RAFKA_RACK": "r2", "RAFKA_DEFAULT_REPLICATION_FACTOR": "3"}[k]
	}, io.Discard)
	if err != nil || o.rack != "r2" || o.defaultRF != 3 {
		t.Fatalf("env: %+v, %v", o, err)
	}
	if o, err := parse(nil, noenv, io.Discard); err != nil || o.defaultRF != 0 {
		t.Fatalf("default: %+v, %v", o, err)
	}
	for _, bad := range []string{"0", "-1", "x", "33"} {
		if _, err := parse([]string{"-default-replication-factor", bad}, noenv, io.Discard); err == nil {
			t.Errorf("-default-replication-factor %s accepted", bad)
		}
	}
}
