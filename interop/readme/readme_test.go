package readme

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/interop/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// quickStart returns the README's `go tool task up` line (without its comment) and the kcat
// lines of the block that follows it.
func quickStart(t *testing.T, readme string) (up string, kcat []string) {
	t.Helper()
	inBlock := false
	for _, line := range strings.Split(readme, "\n") {
		if strings.HasPrefix(line, "```") {
			inBlock = !inBlock
			continue
		}
		if !inBlock {
			continue
		}
		cmd := strings.TrimSpace(line)
		if i := strings.Index(cmd, " #"); i >= 0 && strings.HasPrefix(cmd, "go tool task") {
			cmd = strings.TrimSpace(cmd[:i])
		}
		switch {
		case cmd == "go tool task up" && up == "":
			up = cmd
		case strings.Contains(cmd, "kcat -b localhost:9092") && len(kcat) < 3:
			kcat = append(kcat, cmd)
		}
	}
	if up == "" || len(kcat) != 3 {
		t.Fatalf("README.md lost its quick start: up %q, kcat lines %q", up, kcat)
	}
	return up, kcat
}

// TestReadmeQuickStart: on a fresh clone, the README's `go tool task up` starts the two
// servers, the README's kcat lines list the cluster, produce two records and read them back,
// the status page `up` announces shows the broker, the topic and a consumer group's lag going
// to 0 in headless Chromium (checkStatusPage), a second `up` on the same port is refused with a hint (exit status non-zero), and a SIGTERM
// to the process the user started (the `go` command, alone) stops every process it started:
// `go` exits 0, both servers report exit status 0, no process and no listening socket is left.
// Then `up` again, stopped as Ctrl-C does (SIGINT to the process group), with the same checks.
func TestReadmeQuickStart(t *testing.T) {
	cluster.RequireNamespaces(t)
	if _, err := exec.LookPath("kcat"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat is not installed (.ci/run installs it)")
		}
		t.Skip("kcat not installed")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	up, kcat := quickStart(t, string(readme))

	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := exec.Command("git", "clone", "-q", root, clone).CombinedOutput(); err != nil {
		t.Skipf("not a git checkout (%v: %s)", err, out)
	}
	ns := cluster.NewNetns(t, "readme")

	task := startTask(t, ns, clone, up)
	waitOutput(t, task, "gateway listening on ", 5*time.Minute)

	out, err := ns.Output("sh", "-c", kcat[0])
	if err != nil || !strings.Contains(string(out), "broker") {
		t.Fatalf("%s: %v\n%s", kcat[0], err, out)
	}
	if out, err := ns.Output("sh", "-c", kcat[1]); err != nil {
		t.Fatalf("%s: %v\n%s", kcat[1], err, out)
	}
	out, err = ns.Output("sh", "-c", kcat[2])
	if err != nil || !strings.Contains(string(out), "k1=hello @0") || !strings.Contains(string(out), "k2=world @1") {
		t.Fatalf("%s: %v\n%s", kcat[2], err, out)
	}
	for _, want := range []string{"role", "gateway (Kafka front door)", "broker (partition logs", "next"} {
		if !strings.Contains(task.out.String(), want) {
			t.Errorf("start-up output lacks %q:\n%s", want, task.out.String())
		}
	}
	checkStatusPage(t, ns, task.out.String())

	busy := exec.Command("nsenter", "-t", ns.Pid(), "-n", "--", "sh", "-c", up+" DATA=./data-busy")
	busy.Dir = clone
	out, err = busy.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is in use") || !strings.Contains(string(out), "PORT=") {
		t.Errorf("a second up on the busy port: %v\n%s", err, out)
	}

	// What a user does with `kill <pid>`: SIGTERM to the process they started (the `go`
	// command) alone, not to its process group.
	stopTask(t, ns, task, "SIGTERM to the `go tool task up` process alone", func() error {
		return syscall.Kill(task.cmd.Process.Pid, syscall.SIGTERM)
	})
	if _, err := os.Stat(filepath.Join(clone, "data", "broker", "identity.key")); err != nil {
		t.Errorf("data not under ./data of the clone: %v", err)
	}

	// Ctrl-C in a terminal: SIGINT to the whole foreground process group.
	task = startTask(t, ns, clone, up)
	waitOutput(t, task, "gateway listening on ", 5*time.Minute)
	stopTask(t, ns, task, "SIGINT to the task's process group (Ctrl-C)", func() error {
		return syscall.Kill(-task.cmd.Process.Pid, syscall.SIGINT)
	})
}

// checkStatusPage opens the status page the running `up` announced (its gateway's "status"
// line) in headless Chromium inside the namespace, as a person would in a browser: it shows
// the broker and the topic the README's kcat lines wrote; a kcat consumer group that reads the
// topic shows lag 0, three more records make it 3, and reading again brings it back to 0.
func checkStatusPage(t *testing.T, ns *cluster.Netns, out string) {
	t.Helper()
	url := ""
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "status" && strings.HasPrefix(f[1], "http://") {
			url = f[1]
		}
	}
	if url == "" {
		t.Fatalf("the start-up output names no status page:\n%s", out)
	}
	browser := cluster.Chromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute) // a hang bound
	defer cancel()
	bctx := cluster.StartChromium(t, ctx, browser, ns)
	v := cluster.WaitStatusPage(t, bctx, url, "a broker and the topic demo", time.Minute, func(v cluster.StatusView) bool {
		return len(v.Brokers) == 1 && v.HasTopic("demo")
	})
	t.Logf("status page: %v", v)

	const group = "readme-group"
	consume := "kcat -b localhost:9092 -G " + group + " -X auto.offset.reset=earliest -e -q demo"
	run := func(cmd string) {
		t.Helper()
		if out, err := ns.Output("sh", "-c", cmd); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}
	lag := func(want int64) cluster.StatusView {
		t.Helper()
		return cluster.WaitStatusPage(t, bctx, url, fmt.Sprintf("group %s with lag %d", group, want), time.Minute, func(v cluster.StatusView) bool {
			g, ok := v.Group(group)
			return ok && g.Lag == want
		})
	}
	run(consume)
	lag(0)
	run(`printf 'k3:a\nk4:b\nk5:c\n' | kcat -b localhost:9092 -P -t demo -K:`)
	lag(3)
	cluster.Screenshot(t, bctx, "up-status-lag.png")
	run(consume)
	v = lag(0)
	t.Logf("status page: %v", v)
	cluster.Screenshot(t, bctx, "up-status.png")
	if err := cluster.CloseChromium(bctx); err != nil {
		t.Errorf("closing chromium: %v", err)
	}
}

// stopTask sends the signal (how: what it is, for messages) and checks what a person asks of
// a stop: the process they started exits with status 0, each server reports a clean exit
// (status 0), and nothing is left in the namespace: no process, no listening socket.
func stopTask(t *testing.T, ns *cluster.Netns, task *taskProc, how string, signal func() error) {
	t.Helper()
	if err := signal(); err != nil {
		t.Fatal(err)
	}
	// done closes once the process has exited and every process holding its output (the
	// script and the servers) has closed it.
	select {
	case <-task.done:
		if task.err != nil {
			t.Errorf("go tool task up after %s: %v (want exit status 0)\n%s", how, task.err, task.out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("go tool task up or its servers still running a minute after %s\n%s", how, task.out.String())
	}
	for _, want := range []string{"up: gateway stopped (exit status 0)", "up: broker stopped (exit status 0)"} {
		if !strings.Contains(task.out.String(), want) {
			t.Errorf("after %s the output lacks %q:\n%s", how, want, task.out.String())
		}
	}
	// The watchdog's last poll may still be finishing: bounded wait, not a timing assertion.
	var left []string
	var err error
	for range 100 {
		if left, err = ns.Procs(); err == nil && len(left) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || len(left) > 0 {
		t.Errorf("processes left after %s: %s (%v)", how, strings.Join(left, ", "), err)
	}
	if out, err := ns.Output("ss", "-Hltun"); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("sockets still listening after %s: %v\n%s", how, err, out)
	}
}

type taskProc struct {
	cmd  *exec.Cmd
	out  *kafkaclients.SyncBuffer
	done chan struct{}
	err  error
}

// startTask runs the README's command line in dir, inside ns, as the leader of its own
// process group (as a shell runs a foreground job).
func startTask(t *testing.T, ns *cluster.Netns, dir, line string) *taskProc {
	t.Helper()
	p := &taskProc{out: &kafkaclients.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command("nsenter", "-t", ns.Pid(), "-n", "--", "sh", "-c", "exec "+line)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

func waitOutput(t *testing.T, p *taskProc, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for !strings.Contains(p.out.String(), want) {
		select {
		case <-p.done:
			t.Fatalf("task exited (%v) before printing %q:\n%s", p.err, want, p.out.String())
		case <-deadline:
			t.Fatalf("no %q after %v:\n%s", want, timeout, p.out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
