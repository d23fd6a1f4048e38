package endpoint

import (
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// Options.IdleTimeout replaces iroh's idle timeout on both sides and keeps the rest of the
// settings (dialers still send keep-alives); zero keeps iroh's 30 s, and it also applies on
// top of a QUIC override.
func TestIdleTimeoutOption(t *testing.T) {
	srv, dial := quicConfigs(nil, 0)
	if srv.MaxIdleTimeout != IdleTimeout || dial.MaxIdleTimeout != IdleTimeout {
		t.Fatalf("default idle timeout %v / %v, want iroh's %v", srv.MaxIdleTimeout, dial.MaxIdleTimeout, IdleTimeout)
	}
	srv, dial = quicConfigs(nil, 5*time.Second)
	if srv.MaxIdleTimeout != 5*time.Second || dial.MaxIdleTimeout != 5*time.Second {
		t.Fatalf("idle timeout %v / %v, want 5s", srv.MaxIdleTimeout, dial.MaxIdleTimeout)
	}
	if dial.KeepAlivePeriod != DialKeepAlive || srv.KeepAlivePeriod != 0 {
		t.Fatalf("keep-alive dial %v srv %v, want %v and 0", dial.KeepAlivePeriod, srv.KeepAlivePeriod, DialKeepAlive)
	}
	_, dial = quicConfigs(&quic.Config{MaxIdleTimeout: time.Minute}, 2*time.Second)
	if dial.MaxIdleTimeout != 2*time.Second {
		t.Fatalf("idle timeout over an override %v, want 2s", dial.MaxIdleTimeout)
	}
}
