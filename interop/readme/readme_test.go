package readme

import (
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
// a second `up` on the same port is refused with a hint, and a SIGTERM to the task's process
// group stops every process it started, with status 0.
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

	busy := exec.Command("nsenter", "-t", ns.Pid(), "-n", "--", "sh", "-c", up+" DATA=./data-busy")
	busy.Dir = clone
	out, err = busy.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is in use") || !strings.Contains(string(out), "PORT=") {
		t.Errorf("a second up on the busy port: %v\n%s", err, out)
	}

	if err := syscall.Kill(-task.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-task.done:
		if task.err != nil {
			t.Errorf("task up after SIGTERM to its process group: %v\n%s", task.err, task.out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("task up still running a minute after SIGTERM\n%s", task.out.String())
	}
	if left, err := ns.Procs(); err != nil || len(left) > 0 {
		t.Errorf("processes left after SIGTERM: %s (%v)", strings.Join(left, ", "), err)
	}
	if _, err := os.Stat(filepath.Join(clone, "data", "broker", "identity.key")); err != nil {
		t.Errorf("data not under ./data of the clone: %v", err)
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
