package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium finds a headless-capable browser; without one the test is skipped (and fails
// under CI, whose .ci/run installs Debian's chromium).
func Chromium(t *testing.T) string {
	t.Helper()
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (.ci/run installs it)")
	}
	t.Skip("chromium not installed")
	return ""
}

// StartChromium starts headless Chromium inside ns (nsenter execs it: the browser process is
// the one chromedp started, talking over its pipe, fds 3 and 4) and returns its context. The
// browser is stopped by the test's cleanups, or with the test binary.
func StartChromium(t *testing.T, ctx context.Context, browser string, ns *Netns) context.Context {
	t.Helper()
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1200, 900),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Args = append([]string{"nsenter", "-t", ns.Pid(), "-n", "--", browser}, cmd.Args[1:]...)
			cmd.Path = nsenter
			if cmd.SysProcAttr == nil {
				cmd.SysProcAttr = &syscall.SysProcAttr{}
			}
			cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL // as chromedp's default: gone with the test binary
		}))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	return bctx
}

// CloseChromium closes the browser StartChromium started and waits for it to exit (a test
// that then checks its namespace for leftover processes must not find the browser's).
func CloseChromium(bctx context.Context) error { return chromedp.Cancel(bctx) }

// Screenshot saves what the browser shows as a PNG in the test's artifact directory.
func Screenshot(t *testing.T, bctx context.Context, name string) {
	t.Helper()
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatalf("chromium screenshot: %v", err)
	}
	if len(shot) < 1000 || string(shot[1:4]) != "PNG" {
		t.Fatalf("screenshot of %d bytes is not an image", len(shot))
	}
	out := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", out)
}

// StatusGroup is one consumer group as the status page shows it.
type StatusGroup struct {
	ID  string `json:"id"`
	Lag int64  `json:"lag"`
}

// StatusView is what a person reads on a status page (gateway/status): the brokers table's
// rows (Kafka's view: a gateway answers as the one broker clients see), the mesh peers'
// rows, the topics' headings and the consumer groups with their lag, as rendered text, and
// the whole page's text.
type StatusView struct {
	Brokers []string      `json:"brokers"`
	Peers   []string      `json:"peers"`
	Topics  []string      `json:"topics"`
	Groups  []StatusGroup `json:"groups"`
	Body    string        `json:"body"`
}

// ReadStatusPage loads url afresh in the browser and reads the page.
func ReadStatusPage(bctx context.Context, url string) (StatusView, error) {
	if err := chromedp.Do(bctx, chromedp.Navigate(url), chromedp.WaitVisible("#brokers")); err != nil {
		return StatusView{}, err
	}
	const js = `(() => {
		const rows = sel => Array.from(document.querySelectorAll(sel)).map(e => e.innerText.trim());
		return {
			brokers: rows('#brokers tr:not(:first-child)'),
			peers: rows('#peers tr.peer'),
			topics: rows('h3.topic'),
			groups: Array.from(document.querySelectorAll('h3.group')).map(h => ({
				id: h.firstChild.textContent.trim(),
				lag: Number(h.querySelector('[data-lag]').dataset.lag),
			})),
			body: document.body.innerText,
		};
	})()`
	return chromedp.Run(bctx, chromedp.Evaluate[StatusView](js))
}

// WaitStatusPage reloads url until ok accepts what the page shows, or fails the test after
// timeout with the last view.
func WaitStatusPage(t *testing.T, bctx context.Context, url, what string, timeout time.Duration, ok func(StatusView) bool) StatusView {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, err := ReadStatusPage(bctx, url)
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("the status page at %s never showed %s within %v: err %v\n%s", url, what, timeout, err, v.Body)
		}
		select {
		case <-bctx.Done():
			t.Fatalf("the status page at %s never showed %s: %v", url, what, bctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Group returns the group id's entry, if the page shows it.
func (v StatusView) Group(id string) (StatusGroup, bool) {
	for _, g := range v.Groups {
		if g.ID == id {
			return g, true
		}
	}
	return StatusGroup{}, false
}

// MeshPeers counts the mesh peers shown as what ("broker", "gateway").
func (v StatusView) MeshPeers(what string) int {
	n := 0
	for _, r := range v.Peers {
		if f := strings.Split(r, "\t"); len(f) > 1 && strings.TrimSpace(f[1]) == what {
			n++
		}
	}
	return n
}

// HasTopic says whether a topic heading starts with name (the heading is "name (N
// partitions, M records)").
func (v StatusView) HasTopic(name string) bool {
	for _, h := range v.Topics {
		if strings.HasPrefix(h, name+" ") {
			return true
		}
	}
	return false
}

func (v StatusView) String() string {
	return fmt.Sprintf("brokers %q topics %q groups %+v", v.Brokers, v.Topics, v.Groups)
}

// JSString quotes s as a JavaScript string literal.
func JSString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
