package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshkafka/meshkafka/interop/irohnode"
)

// NamespaceSupport reports what is missing for building network namespaces here ("" when
// nothing is): root, and the unshare, nsenter, ip and nft tools.
func NamespaceSupport() string {
	if os.Geteuid() != 0 {
		return "network namespaces need root (CI runs as root)"
	}
	for _, tool := range []string{"unshare", "nsenter", "ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("%s not installed (apt-get install util-linux iproute2 nftables)", tool)
		}
	}
	return ""
}

// RequireNamespaces skips tb, naming what is missing, unless network namespaces can be built
// here; with INTEROP_REQUIRED=1 it fails instead.
func RequireNamespaces(tb testing.TB) {
	tb.Helper()
	irohnode.Require(tb, NamespaceSupport())
}

// Netns is an anonymous network namespace held open by a sleeping child process; it goes away
// (with its interfaces and firewall rules) when tb ends or the test binary dies.
type Netns struct {
	Name string
	cmd  *exec.Cmd
}

// NewNetns creates a network namespace with loopback up.
func NewNetns(tb testing.TB, name string) *Netns {
	tb.Helper()
	// The holder reads its stdin until EOF: when the test binary dies, however it dies, the
	// pipe closes and the namespace goes (Pdeathsig would tie it to the forking thread).
	cmd := exec.Command("unshare", "-n", "cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("unshare -n: %v", err)
	}
	n := &Netns{Name: name, cmd: cmd}
	tb.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	self, _ := os.Readlink("/proc/self/ns/net")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if l, err := os.Readlink(n.path()); err == nil && l != self {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("namespace %s did not appear", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	n.Run(tb, "ip", "link", "set", "lo", "up")
	return n
}

// Pid is the process holding the namespace (what nsenter -t takes).
func (n *Netns) Pid() string  { return strconv.Itoa(n.cmd.Process.Pid) }
func (n *Netns) path() string { return "/proc/" + n.Pid() + "/ns/net" }

// Run runs a command inside the namespace and fails tb if it fails.
func (n *Netns) Run(tb testing.TB, args ...string) {
	tb.Helper()
	if out, err := n.Output(args...); err != nil {
		tb.Fatalf("%s: %s: %v: %s", n.Name, strings.Join(args, " "), err, out)
	}
}

// Output runs a command inside the namespace and returns its combined output.
func (n *Netns) Output(args ...string) ([]byte, error) {
	return exec.Command("nsenter", append([]string{"-t", n.Pid(), "-n", "--"}, args...)...).CombinedOutput()
}

// Do runs f on an OS thread switched into the namespace; sockets f creates live there for
// good. The thread is switched back afterwards and handed back to the scheduler; only if that
// fails does it exit with the goroutine. (A thread must not die needlessly: a child process
// started with Pdeathsig from it would be killed.)
func (n *Netns) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		fd, err := unix.Open(n.path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		err = f()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else: no Unlock, the thread dies with this goroutine
		errc <- err
	}()
	return <-errc
}

// DialContext dials from inside the namespace (kgo.Dialer and http.Transport take it).
func (n *Netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}
