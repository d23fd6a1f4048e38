package main

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
)

// TestDiscoverSeedsCollectsForWait: without -trusted-brokers, the brokers heard of within
// -mdns-wait after the first one (on the injected clock) are the seeds, and the wait ends then
// and not before. synctest.Wait only lets the goroutine settle between steps.
func TestDiscoverSeedsCollectsForWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := clock.NewFake(time.Unix(1000, 0))
		v := newBrokerView(slog.New(slog.DiscardHandler))
		up := func() key.PublicKey {
			id := key.GenerateSecretKey().Public()
			v.change(meshctl.Change{Kind: meshctl.Up, Digest: meshctl.Digest{Node: id, Role: meshctl.RoleBroker}})
			return id
		}
		b1 := up()
		type result struct {
			seeds []endpoint.NodeAddr
			err   error
		}
		done := make(chan result, 1)
		go func() {
			seeds, err := discoverSeeds(context.Background(), fake, v, key.PublicKey{}, 3*time.Second, slog.New(slog.DiscardHandler))
			done <- result{seeds, err}
		}()
		synctest.Wait()
		fake.Advance(2 * time.Second)
		b2 := up() // within the wait: collected
		synctest.Wait()
		select {
		case r := <-done:
			t.Fatalf("returned before -mdns-wait passed: %v %v", r.seeds, r.err)
		default:
		}
		fake.Advance(time.Second)
		r := <-done
		if r.err != nil || len(r.seeds) != 2 {
			t.Fatalf("seeds %v, err %v; want both brokers", r.seeds, r.err)
		}
		got := map[key.PublicKey]bool{r.seeds[0].ID: true, r.seeds[1].ID: true}
		if !got[b1] || !got[b2] {
			t.Fatalf("seeds %v, want %s and %s", r.seeds, b1.ShortString(), b2.ShortString())
		}
	})
}
