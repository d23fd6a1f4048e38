package discovery

import (
	"context"
	"slices"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
)

// Follow calls fn for every node w reports that is new or whose address changed since fn
// last saw it, looking at w.Peers() at once, every interval, and whenever kick fires (kick
// may be nil; a source's change callback can signal it). It returns when ctx ends. fn runs
// on the caller's goroutine, one call at a time. clk times the interval (nil: the wall clock).
func Follow(ctx context.Context, clk clock.Clock, w Watcher, interval time.Duration, kick <-chan struct{}, fn func(NodeAddr)) {
	if interval <= 0 {
		interval = time.Second
	}
	seen := map[string]NodeAddr{}
	t := clock.Or(clk).NewTicker(interval)
	defer t.Stop()
	for {
		for _, p := range w.Peers() {
			id := p.ID.String()
			old, ok := seen[id]
			if ok && old.RelayURL == p.RelayURL && slices.Equal(old.Direct, p.Direct) {
				continue
			}
			seen[id] = p
			fn(p)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-kick:
		}
	}
}
