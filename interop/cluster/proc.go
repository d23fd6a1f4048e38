package cluster

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// ChildLogDirEnv, when set, names a directory where every child's output is also written to a
// file (it survives the test: for debugging hangs; a stalled child sent SIGQUIT leaves its
// goroutine stacks there).
const ChildLogDirEnv = "MESHKAFKA_CHILD_LOG_DIR"

// Proc is one running child process. Its output is kept in memory for the test.
type Proc struct {
	Name   string
	Cmd    *exec.Cmd
	Stdout *kafkaclients.SyncBuffer
	Stderr *kafkaclients.SyncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, valid after done
}

// StartProc starts bin with args, with env added to this process's environment, inside the
// network namespace ns (nil: this process's). The process is SIGKILLed when tb ends unless it
// exited before, and, as a safety net, when the test binary dies (Pdeathsig). Pdeathsig
// fires when the OS thread that started the child exits, so nothing here lets a thread die:
// Netns.Do hands its thread back after switching it back.
func StartProc(tb testing.TB, name string, ns *Netns, env []string, bin string, args ...string) *Proc {
	tb.Helper()
	return startProc(tb, tb, name, ns, env, bin, args...)
}

// startProc is StartProc with the process's lifetime tied to owner instead of tb (tb still
// reports start failures): a cluster's brokers and gateways live as long as the test that
// made the cluster, even when a subtest restarts them.
func startProc(tb, owner testing.TB, name string, ns *Netns, env []string, bin string, args ...string) *Proc {
	tb.Helper()
	p := &Proc{Name: name, Stdout: &kafkaclients.SyncBuffer{}, Stderr: &kafkaclients.SyncBuffer{}, done: make(chan struct{})}
	if ns != nil {
		// nsenter enters only the network namespace, so it execs bin without forking: the
		// process we signal is bin itself.
		p.Cmd = exec.Command("nsenter", append([]string{"-t", ns.Pid(), "-n", "--", bin}, args...)...)
	} else {
		p.Cmd = exec.Command(bin, args...)
	}
	if len(env) > 0 {
		p.Cmd.Env = append(os.Environ(), env...)
	}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Stdout, p.Stderr
	if d := os.Getenv(ChildLogDirEnv); d != "" {
		f, err := os.CreateTemp(d, name+"-*.log")
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(f, "%s %s\n", bin, strings.Join(args, " "))
		owner.Cleanup(func() { f.Close() })
		p.Cmd.Stdout, p.Cmd.Stderr = io.MultiWriter(p.Stdout, f), io.MultiWriter(p.Stderr, f)
	}
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A script killed before it could stop its own children leaves them holding its output:
	// Wait then stops waiting for that output after this long instead of forever.
	p.Cmd.WaitDelay = 10 * time.Second
	if err := p.Cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	owner.Cleanup(p.Kill)
	return p
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is Wait's result once the process has exited (nil before).
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Kill sends SIGKILL and waits for the process to be gone (idempotent). A stopped
// (SIGSTOPped) process dies of SIGKILL too.
func (p *Proc) Kill() {
	if !p.Exited() {
		_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// Signal sends sig unless the process has exited (SIGSTOP / SIGCONT to pause and resume).
func (p *Proc) Signal(sig syscall.Signal) {
	if !p.Exited() {
		_ = p.Cmd.Process.Signal(sig)
	}
}

// SignalAndWait sends sig (unless the process has exited) and waits for it to exit, killing
// it after grace; it reports whether it had to.
func (p *Proc) SignalAndWait(sig syscall.Signal, grace time.Duration) (killed bool) {
	p.Signal(sig)
	select {
	case <-p.done:
		return false
	case <-time.After(grace):
		p.Kill()
		return true
	}
}

// Stop sends SIGTERM and waits (SIGKILL after 10 s); it returns the exit error.
func (p *Proc) Stop() error {
	if p.SignalAndWait(syscall.SIGTERM, 10*time.Second) {
		return fmt.Errorf("%s did not exit within 10s of SIGTERM", p.Name)
	}
	return p.err
}

// Quit sends SIGQUIT (a Go process prints every goroutine's stack and exits) and waits; for
// diagnosing a stall before the test fails.
func (p *Proc) Quit() { p.SignalAndWait(syscall.SIGQUIT, 5*time.Second) }

// Logs is everything the process wrote so far.
func (p *Proc) Logs() string {
	return fmt.Sprintf("--- %s stdout:\n%s--- %s stderr:\n%s", p.Name, p.Stdout, p.Name, p.Stderr)
}

// Tail is the last n lines of the process's stdout and of its stderr.
func (p *Proc) Tail(n int) string {
	return fmt.Sprintf("--- %s stdout (last %d lines):\n%s--- %s stderr (last %d lines):\n%s",
		p.Name, n, lastLines(p.Stdout.String(), n), p.Name, n, lastLines(p.Stderr.String(), n))
}

func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

// WaitFor polls cond until it holds; it fails tb if the process exits first or timeout passes
// (a bound against hangs, not a speed assertion).
func (p *Proc) WaitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if p.Exited() {
			tb.Fatalf("%s exited (%v) before %s\n%s", p.Name, p.err, what, p.Logs())
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: no %s within %v\n%s", p.Name, what, timeout, p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
