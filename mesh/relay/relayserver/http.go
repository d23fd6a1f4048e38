package relayserver

import (
	"bufio"
	"net/http"
	"net/netip"
	"strings"

	"github.com/meshkafka/meshkafka/mesh/relay"
)

// Captive-portal check headers (iroh relay server.rs, inherited from Tailscale).
const (
	noContentChallengeHeader = "X-Tailscale-Challenge"
	noContentResponseHeader  = "X-Tailscale-Response"
)

// ServeHTTP implements the relay's HTTP surface:
//
//	GET /relay, /derp     with "Upgrade: iroh derp http": 101, then Accept on the raw stream
//	GET /relay/probe, /derp/probe: 200
//	GET /generate_204     204, echoing a valid X-Tailscale-Challenge as X-Tailscale-Response
//	GET /                 a short text page
//
// Websocket upgrades (browser clients) are not supported and get 400.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case relay.HTTPPath, relay.LegacyHTTPPath:
		s.serveUpgrade(w, r)
	case relay.ProbePath, "/derp/probe":
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.WriteHeader(http.StatusOK)
	case "/generate_204":
		if ch := r.Header.Get(noContentChallengeHeader); validChallenge(ch) {
			w.Header().Set(noContentResponseHeader, "response "+ch)
		}
		w.WriteHeader(http.StatusNoContent)
	case "/", "/index.html":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("meshkafka relay (iroh 0.28 relay protocol v3)\n"))
	case "/robots.txt":
		_, _ = w.Write([]byte("User-agent: *\nDisallow: /\n"))
	default:
		http.NotFound(w, r)
	}
}

func validChallenge(ch string) bool {
	if ch == "" || len(ch) >= 64 {
		return false
	}
	for _, c := range ch {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Server) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "relay: GET required", http.StatusMethodNotAllowed)
		return
	}
	up := r.Header.Get("Upgrade")
	if up != relay.UpgradeProtocol {
		if strings.EqualFold(up, "websocket") {
			http.Error(w, "relay: websocket transport not supported, use \"Upgrade: iroh derp http\"", http.StatusBadRequest)
			return
		}
		http.Error(w, "relay: missing \"Upgrade: iroh derp http\"", http.StatusBadRequest)
		return
	}
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		addr = ap.Addr().Unmap()
	}
	ip, ok := s.holdIP(addr)
	if !ok {
		http.Error(w, "relay: too many connections from this address", http.StatusTooManyRequests)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		s.releaseIP(ip)
		http.Error(w, "relay: connection cannot be upgraded", http.StatusInternalServerError)
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		s.releaseIP(ip)
		return
	}
	// iroh's server answers with exactly this; Connection: upgrade is sent only for websocket.
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + relay.UpgradeProtocol + "\r\n\r\n"); err != nil {
		s.releaseIP(ip)
		_ = conn.Close()
		return
	}
	if err := brw.Flush(); err != nil {
		s.releaseIP(ip)
		_ = conn.Close()
		return
	}
	var br *bufio.Reader
	if brw.Reader.Buffered() > 0 {
		br = brw.Reader
	}
	_ = s.accept(s.ctx, conn, br, r.Header.Get(relay.UnpacedHeader) != "1", ip)
}
