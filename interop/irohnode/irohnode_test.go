package irohnode

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The test binary doubles as a fake driver (no Node.js, no Rust): with fakeDriverEnv set it
// speaks the driver protocol on stdin/stdout and exits.
const fakeDriverEnv = "IROHNODE_FAKE_DRIVER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeDriverEnv); mode != "" {
		fakeDriver(mode)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func fakeDriver(mode string) {
	out := bufio.NewWriter(os.Stdout)
	emit := func(v any) {
		b, _ := json.Marshal(v)
		out.Write(append(b, '\n'))
		out.Flush()
	}
	emit(map[string]any{"event": "ready", "pid": os.Getpid()})
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var cmd map[string]any
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			emit(map[string]any{"event": "protocolError", "error": err.Error()})
			continue
		}
		id := cmd["id"]
		switch cmd["cmd"] {
		case "echo":
			cmd["ok"] = true
			emit(cmd)
		case "fail":
			emit(map[string]any{"id": id, "error": "refused: error 120"})
		case "emit":
			for _, e := range cmd["events"].([]any) {
				emit(e)
			}
			emit(map[string]any{"id": id, "ok": true})
		case "garbage":
			out.WriteString("not json\n")
			out.Flush()
			emit(map[string]any{"id": id, "ok": true})
		case "hang":
		case "exit":
			os.Exit(3)
		default:
			emit(map[string]any{"id": id, "error": fmt.Sprintf("unknown command %v", cmd["cmd"])})
		}
	}
	if mode == "ignore-eof" {
		time.Sleep(time.Hour)
	}
}

func startFake(t *testing.T, mode string) *Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := StartDriver(ctx, Config{Node: os.Args[0], Dir: t.TempDir(), Env: []string{fakeDriverEnv + "=" + mode}, notRust: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDriverCallsAndEvents(t *testing.T) {
	d := startFake(t, "normal")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var r struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	if err := d.Call(ctx, "echo", map[string]any{"name": "a", "count": 3}, &r); err != nil {
		t.Fatal(err)
	}
	if r.Name != "a" || r.Count != 3 {
		t.Fatalf("echo decoded %+v", r)
	}

	err := d.Call(ctx, "fail", nil, nil)
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "error 120") {
		t.Fatalf("fail: %v, want a CommandError carrying the driver's message", err)
	}
	if err := d.Call(ctx, "echo", "not an object", nil); err == nil {
		t.Fatal("non-object args were accepted")
	}
	if err := d.Call(ctx, "garbage", nil, nil); err != nil {
		t.Fatalf("a garbage line broke the driver connection: %v", err)
	}
	if !strings.Contains(d.Stderr(), "unparsable driver line") {
		t.Errorf("garbage line not logged; stderr %q", d.Stderr())
	}

	events := []map[string]any{
		{"event": "accepted", "node": "n1", "conn": "c1", "alpn": "x", "remote": "r1"},
		{"event": "stream", "node": "n1", "conn": "c1", "kind": "uni", "recvBytes": 5},
		{"event": "accepted", "node": "n1", "conn": "c2", "alpn": "x", "remote": "r2"},
		{"event": "gossip", "sub": "s1", "type": "received", "content": "aGk=", "from": "r1"},
	}
	if err := d.Call(ctx, "emit", map[string]any{"events": events}, nil); err != nil {
		t.Fatal(err)
	}
	n := &Node{d: d, Name: "n1"}
	for _, want := range []string{"c1", "c2"} {
		e, err := n.WaitAccepted(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		if e.Conn != want {
			t.Fatalf("accepted %s, want %s (events are returned in order, once each)", e.Conn, want)
		}
	}
	s, err := n.WaitStream(ctx, "c1")
	if err != nil || s.Kind != "uni" || s.RecvBytes != 5 {
		t.Fatalf("stream event %+v, %v", s, err)
	}
	g, err := (&Sub{n: n, Handle: "s1"}).WaitEvent(ctx, "received", nil)
	if err != nil || string(g.Content) != "hi" {
		t.Fatalf("gossip event %+v, %v", g, err)
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if _, err := n.WaitAccepted(short, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a third accepted event appeared: %v", err)
	}
	if got := len(d.Events()); got != 5 { // ready + 4
		t.Fatalf("%d events recorded, want 5", got)
	}
}

func TestDriverCallTimesOut(t *testing.T) {
	d := startFake(t, "normal")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := d.Call(ctx, "hang", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: %v, want deadline exceeded", err)
	}
}

func TestDriverCrashFailsPendingCalls(t *testing.T) {
	d := startFake(t, "normal")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Call(ctx, "exit", nil, nil); err == nil || !strings.Contains(err.Error(), "driver output ended") {
		t.Fatalf("call to a dying driver: %v", err)
	}
	if err := d.Call(ctx, "echo", nil, nil); err == nil {
		t.Fatal("call after the driver died succeeded")
	}
	if _, err := d.WaitEvent(ctx, func(*Event) bool { return false }); err == nil {
		t.Fatal("WaitEvent on a dead driver did not fail")
	}
	if err := d.Close(); err == nil {
		t.Error("Close did not report the driver's exit status 3")
	}
}

func TestDriverCloseKillsAStuckDriver(t *testing.T) {
	old := closeGrace
	closeGrace = 200 * time.Millisecond
	defer func() { closeGrace = old }()
	d := startFake(t, "ignore-eof")
	pid := d.cmd.Process.Pid
	start := time.Now()
	d.Close()
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Close took %v", el)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("driver process %d still exists after Close: %v", pid, err)
	}
	d.Close() // idempotent
}

func TestStartDriverMissingBinary(t *testing.T) {
	_, err := StartDriver(context.Background(), Config{Node: "/nonexistent/node", Dir: t.TempDir(), notRust: true})
	if err == nil {
		t.Fatal("started a driver from a missing binary")
	}
}

func TestStartDriverRefusesHostNetwork(t *testing.T) {
	if privateNamespace() == "" {
		t.Skip("inside a private namespace: nothing to refuse")
	}
	_, err := StartDriver(context.Background(), Config{Node: "/bin/false", Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "refusing to start a Rust node") {
		t.Fatalf("StartDriver outside a private namespace: %v", err)
	}
}

func TestPattern(t *testing.T) {
	const n = 3<<20 + 17
	// Read in odd sizes, WriteTo, and the block repeated must all agree.
	var viaRead bytes.Buffer
	r := Pattern(n).(*patternReader)
	buf := make([]byte, 12345)
	for {
		k, err := r.Read(buf)
		viaRead.Write(buf[:k])
		if err == io.EOF {
			break
		}
	}
	var viaWriteTo bytes.Buffer
	if _, err := Pattern(n).(io.WriterTo).WriteTo(&viaWriteTo); err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat(PatternBlock(), 4)[:n]
	if !bytes.Equal(viaRead.Bytes(), want) || !bytes.Equal(viaWriteTo.Bytes(), want) {
		t.Fatal("pattern readers disagree with the repeated block")
	}
	sum := sha256.Sum256(want)
	if PatternSHA256(n) != hex.EncodeToString(sum[:]) {
		t.Fatal("PatternSHA256 disagrees")
	}
	// Known answer (the driver's JavaScript generator produced the same in TestRustToRust).
	if got := hex.EncodeToString(PatternBlock()[:8]); got != "19460c513e552ee0" {
		t.Errorf("pattern starts %s", got)
	}
	if PatternSHA256(0) != hex.EncodeToString(sha256.New().Sum(nil)) {
		t.Error("empty pattern hash")
	}
}

func TestNodeAtLeast(t *testing.T) {
	for v, want := range map[string]bool{
		"v20.3.0": true, "v20.20.2": true, "v22.1.0": true, "v20.2.9": false, "v18.19.0": false,
		"garbage": false, "v20": false, "": false,
	} {
		if got := nodeAtLeast(v, 20, 3); got != want {
			t.Errorf("nodeAtLeast(%q) = %v, want %v", v, got, want)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"id":1,"ok":true,"nodeId":"abc"}`))
	f.Add([]byte(`{"id":2,"error":"boom"}`))
	f.Add([]byte(`{"event":"stream","recvBytes":5,"content":"aGk="}`))
	f.Add([]byte(`{"event":"gossip","peers":["a","b"]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, line []byte) {
		id, ev, cmdErr, err := parseLine(line)
		if err != nil {
			if ev != nil || id != 0 || cmdErr != "" {
				t.Fatal("an error came with a result")
			}
			return
		}
		if ev != nil && !bytes.Equal(ev.Raw, line) {
			t.Fatal("event Raw is not the line")
		}
		if !json.Valid(line) {
			t.Fatal("invalid JSON parsed without error")
		}
	})
}
