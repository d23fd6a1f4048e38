package irohnode

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Config says where the driver lives. The zero value finds everything by itself.
type Config struct {
	// Node is the node binary; empty means $IROH_NODE, then "node" from PATH.
	Node string
	// Dir is the directory holding driver/driver.mjs and node_modules; empty means [DriverDir].
	Dir string
	// Env is added to the driver's environment.
	Env []string

	// notRust marks a stand-in driver (this package's tests) that may run outside the
	// private namespace.
	notRust bool
}

// Event is one event line from the driver. Name says which kind; the other fields are filled as
// the kind carries them, and Raw holds the whole line.
type Event struct {
	Name string `json:"event"`

	Node       string `json:"node"`
	Conn       string `json:"conn"`
	ALPN       string `json:"alpn"`
	Remote     string `json:"remote"`
	RemoteAddr string `json:"remoteAddr"`
	Reason     string `json:"reason"`
	Error      string `json:"error"`

	// stream events
	Kind       string  `json:"kind"`
	Mode       string  `json:"mode"`
	RecvBytes  int64   `json:"recvBytes"`
	RecvSHA256 string  `json:"recvSha256"`
	SentBytes  int64   `json:"sentBytes"`
	SentSHA256 string  `json:"sentSha256"`
	MS         float64 `json:"ms"`

	// gossip events
	Sub     string   `json:"sub"`
	Type    string   `json:"type"`
	Content []byte   `json:"content"`
	From    string   `json:"from"`
	Peer    string   `json:"peer"`
	Peers   []string `json:"peers"`
	PID     int      `json:"pid"`
	Raw     json.RawMessage
	taken   bool // returned by WaitEvent already; guarded by Driver.mu
}

// Driver is one running driver process. Its methods are safe for concurrent use.
type Driver struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailBuffer
	done   chan struct{} // closed when the stdout reader has ended (the process closed stdout)

	writeMu sync.Mutex // serialises writes to stdin

	mu      sync.Mutex // guards the fields below
	nextID  int64
	pending map[int64]chan reply
	events  []*Event
	changed chan struct{} // closed and replaced whenever events grows or the driver ends
	exitErr error         // set once the reader ended

	closeOnce sync.Once
	closeErr  error
}

type reply struct {
	raw json.RawMessage
	err error
}

// StartDriver starts a driver process and waits for its "ready" event. Close it when done.
//
// It refuses to start unless it runs inside a private network namespace whose only interface is
// loopback: a Rust iroh node would otherwise contact public relays and DNS.
func StartDriver(ctx context.Context, cfg Config) (*Driver, error) {
	if !cfg.notRust {
		if msg := privateNamespace(); msg != "" {
			return nil, fmt.Errorf("irohnode: refusing to start a Rust node: %s", msg)
		}
	}
	nodeBin := cfg.Node
	if nodeBin == "" {
		var err error
		if nodeBin, err = findNode(); err != nil {
			return nil, err
		}
	}
	dir := cfg.Dir
	if dir == "" {
		var err error
		if dir, err = DriverDir(); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(nodeBin, filepath.Join(dir, "driver", "driver.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), cfg.Env...)
	// Own process group, so Close can kill exactly this driver. If the test binary dies, the
	// driver sees EOF on stdin and exits by itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	d := &Driver{
		cmd:     cmd,
		stdin:   stdin,
		stderr:  &tailBuffer{max: 64 << 10},
		done:    make(chan struct{}),
		pending: make(map[int64]chan reply),
		changed: make(chan struct{}),
	}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("irohnode: start driver: %w", err)
	}
	go d.readLoop(stdout)
	if _, err := d.WaitEvent(ctx, func(e *Event) bool { return e.Name == "ready" }); err != nil {
		d.Close()
		return nil, fmt.Errorf("irohnode: driver did not become ready: %w", err)
	}
	return d, nil
}

// PID is the driver process's id (for reading its CPU time in benchmarks).
func (d *Driver) PID() int { return d.cmd.Process.Pid }

// Start starts a driver for a test and kills it in t.Cleanup; a start failure fails the test.
// The driver's stderr is logged if the test failed.
func Start(t testing.TB) *Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := StartDriver(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Close()
		if t.Failed() {
			if s := d.Stderr(); s != "" {
				t.Logf("driver stderr (tail):\n%s", s)
			}
		}
	})
	return d
}

func (d *Driver) readLoop(stdout io.Reader) {
	defer close(d.done)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		id, ev, cmdErr, err := parseLine(sc.Bytes())
		if err != nil {
			d.stderr.Write([]byte("irohnode: " + err.Error() + "\n"))
			continue
		}
		if ev == nil {
			d.mu.Lock()
			ch := d.pending[id]
			delete(d.pending, id)
			d.mu.Unlock()
			if ch != nil {
				r := reply{raw: cloneRaw(sc.Bytes())}
				if cmdErr != "" {
					r.err = &CommandError{Msg: cmdErr}
				}
				ch <- r
			}
			continue
		}
		d.mu.Lock()
		d.events = append(d.events, ev)
		close(d.changed)
		d.changed = make(chan struct{})
		d.mu.Unlock()
	}
	err := sc.Err()
	if err == nil {
		err = io.EOF
	}
	d.mu.Lock()
	d.exitErr = fmt.Errorf("irohnode: driver output ended: %w", err)
	for id, ch := range d.pending {
		ch <- reply{err: d.exitErr}
		delete(d.pending, id)
	}
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

func cloneRaw(b []byte) json.RawMessage { return append(json.RawMessage(nil), b...) }

// parseLine decodes one line of driver output: either a reply (ev == nil; id and, for a
// failed command, cmdErr) or an event.
func parseLine(line []byte) (id int64, ev *Event, cmdErr string, err error) {
	var head struct {
		ID    *int64  `json:"id"`
		Event *string `json:"event"`
		Error string  `json:"error"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return 0, nil, "", fmt.Errorf("unparsable driver line %.200q: %w", line, err)
	}
	switch {
	case head.ID != nil:
		return *head.ID, nil, head.Error, nil
	case head.Event != nil:
		ev = &Event{}
		if err := json.Unmarshal(line, ev); err != nil {
			return 0, nil, "", fmt.Errorf("bad event %.200q: %w", line, err)
		}
		ev.Raw = cloneRaw(line)
		return 0, ev, "", nil
	}
	return 0, nil, "", fmt.Errorf("driver line is neither a reply nor an event: %.200q", line)
}

// CommandError is an error the driver reported for a command (for example, a refused connect).
type CommandError struct{ Msg string }

func (e *CommandError) Error() string { return "irohnode: driver: " + e.Msg }

// Call sends one command and decodes the reply into out (may be nil). args is any value that
// marshals to a JSON object; its fields become the command's arguments.
func (d *Driver) Call(ctx context.Context, cmd string, args, out any) error {
	obj := map[string]any{}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &obj); err != nil {
			return fmt.Errorf("irohnode: args for %s are not an object: %w", cmd, err)
		}
	}
	ch := make(chan reply, 1)
	d.mu.Lock()
	if d.exitErr != nil {
		d.mu.Unlock()
		return d.exitErr
	}
	d.nextID++
	id := d.nextID
	d.pending[id] = ch
	d.mu.Unlock()
	obj["id"] = id
	obj["cmd"] = cmd
	line, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	d.writeMu.Lock()
	_, err = d.stdin.Write(append(line, '\n'))
	d.writeMu.Unlock()
	if err != nil {
		d.forget(id)
		return fmt.Errorf("irohnode: send %s: %w", cmd, err)
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return fmt.Errorf("%s: %w", cmd, r.err)
		}
		if out != nil {
			if err := json.Unmarshal(r.raw, out); err != nil {
				return fmt.Errorf("irohnode: decode %s reply: %w", cmd, err)
			}
		}
		return nil
	case <-ctx.Done():
		d.forget(id)
		return fmt.Errorf("irohnode: %s: %w", cmd, ctx.Err())
	}
}

func (d *Driver) forget(id int64) {
	d.mu.Lock()
	delete(d.pending, id)
	d.mu.Unlock()
}

// WaitEvent returns the earliest event not yet returned by WaitEvent for which match is true,
// waiting for one to arrive until ctx ends or the driver exits. Each event is returned once.
func (d *Driver) WaitEvent(ctx context.Context, match func(*Event) bool) (*Event, error) {
	for {
		d.mu.Lock()
		for _, e := range d.events {
			if !e.taken && match(e) {
				e.taken = true
				d.mu.Unlock()
				return e, nil
			}
		}
		exited, changed := d.exitErr, d.changed
		d.mu.Unlock()
		if exited != nil {
			return nil, exited
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("irohnode: waiting for event: %w", ctx.Err())
		}
	}
}

// Events returns a copy of every event received so far, taken or not.
func (d *Driver) Events() []Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Event, len(d.events))
	for i, e := range d.events {
		out[i] = *e
	}
	return out
}

// Stderr returns the tail of the driver's standard error.
func (d *Driver) Stderr() string { return d.stderr.String() }

// Close ends the driver: it closes stdin (the driver shuts its nodes down and exits), and kills
// the process group if it has not exited after a grace period. It waits for the process and for
// the goroutine reading its output. Close may be called more than once.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		d.stdin.Close()
		select {
		case <-d.done:
		case <-time.After(closeGrace):
			// Kill only our own process group (Setpgid made the driver its leader).
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
		waited := make(chan error, 1)
		go func() { waited <- d.cmd.Wait() }()
		select {
		case err := <-waited:
			d.closeErr = err
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			d.closeErr = <-waited
		}
	})
	return d.closeErr
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// closeGrace is how long Close waits for the driver to exit by itself.
var closeGrace = 5 * time.Second

var errNoDriverDir = errors.New("irohnode: cannot find interop/driver/driver.mjs with node_modules/@number0/iroh beside it (set IROH_DRIVER_DIR)")
