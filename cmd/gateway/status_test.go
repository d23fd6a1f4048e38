package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStatusPageInChromium loads the gateway's status page in headless Chromium (Debian's
// chromium package) and checks what a person sees: the topic a test produced to with its
// partitions and record count, a consumer group whose lag went to 0 once it committed, and
// the recent traces (the gateway's request spans drawn as waterfalls).
// It keeps a screenshot (docs/status.png with UPDATE_SCREENSHOT=1, for the README).
func TestStatusPageInChromium(t *testing.T) {
	browser := ""
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed (.ci/run installs it)")
		}
		t.Skip("chromium not installed")
	}
	got := runGateway(t, map[string]string{"MESHKAFKA_METRICS": "127.0.0.1:0"}, "gateway listening on ", "metrics ")
	addr, url := got["gateway listening on "], strings.TrimSuffix(got["metrics "], "metrics")
	ctx := context.Background()
	pctx, pcancel := context.WithTimeout(ctx, time.Minute)
	defer pcancel()
	prod := kgoClient(t, addr, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("shown"))
	defer prod.Close()
	produceN(t, pctx, prod, 12)
	cons := kgoClient(t, addr, kgo.ConsumerGroup("readers"), kgo.ConsumeTopics("shown"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	defer cons.Close()
	pollN(t, pctx, cons, 12)
	if err := cons.CommitUncommittedOffsets(pctx); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1200, 900))
	actx, acancel := chromedp.NewExecAllocator(pctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(url), chromedp.WaitVisible("#brokers")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	text, err := chromedp.Run(bctx, chromedp.Text("body"))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatalf("chromium screenshot: %v", err)
	}
	for _, want := range []string{"meshkafka gateway", "embedded broker", "shown (1 partitions, 12 records)", "readers", "lag 0", "controller", "shown\t0\t12\t12\t0",
		"Recent traces", "gateway.kafka.request"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q:\n%s", want, text)
		}
	}
	if len(shot) < 1000 || string(shot[1:4]) != "PNG" {
		t.Fatalf("screenshot of %d bytes is not an image", len(shot))
	}
	out := filepath.Join(t.TempDir(), "status.png")
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		out = filepath.Join("..", "..", "docs", "status.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
}
