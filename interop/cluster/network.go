package cluster

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Network is a private switched LAN built from network namespaces: a hub namespace holding a
// bridge (address .1, where a relay runs and from which the test's clients dial), and one
// namespace per node joined to the bridge by a veth pair. Faults are nftables rules on the
// bridge (family bridge, in the hub), so they act like a switch that stops forwarding:
// Isolate cuts one node off from everything, Partition splits nodes into groups that cannot
// reach each other, RelayOnly drops UDP between nodes (the mesh then has to go through the
// relay on the hub), Heal removes the partition rules. Nothing touches the host's own network
// namespace.
type Network struct {
	Hub    *Netns
	Prefix netip.Prefix // 10.99.0.0/24
	tb     testing.TB

	mu    sync.Mutex
	nodes []*NetNode
}

// NetNode is a namespace attached to a Network.
type NetNode struct {
	*Netns
	Addr netip.Addr // the node's own address
	// Public is the address its packets carry on the bridge: Addr, or its NAT router's
	// address when it sits behind one (AttachNAT). The fault rules match it.
	Public netip.Addr
	// NAT is the router's namespace when the node sits behind one (AttachNAT), else nil.
	NAT *Netns
}

// public is the address rules on the bridge match for x (Addr when Public is unset).
func (x *NetNode) public() netip.Addr {
	if x.Public.IsValid() {
		return x.Public
	}
	return x.Addr
}

// NewNetwork builds the hub namespace and its bridge.
func NewNetwork(tb testing.TB) *Network {
	tb.Helper()
	RequireNamespaces(tb)
	n := &Network{Hub: NewNetns(tb, "hub"), Prefix: netip.MustParsePrefix("10.99.0.0/24"), tb: tb}
	h := n.Hub
	h.Run(tb, "ip", "link", "add", "br0", "type", "bridge")
	h.Run(tb, "ip", "addr", "add", n.HubAddr().String()+"/24", "dev", "br0")
	h.Run(tb, "ip", "link", "set", "br0", "up")
	// Base chains at each bridge hook: faults (flushed by Heal) and mode (relay-only).
	h.Run(tb, "nft", "add table bridge qnet")
	for _, c := range []struct{ name, hook string }{
		{"fault_fwd", "forward"}, {"fault_in", "input"}, {"fault_out", "output"}, {"mode_fwd", "forward"},
	} {
		h.Run(tb, "nft", fmt.Sprintf("add chain bridge qnet %s { type filter hook %s priority 0 ; }", c.name, c.hook))
	}
	return n
}

// HubAddr is the bridge's own address in the hub namespace (10.99.0.1).
func (n *Network) HubAddr() netip.Addr { return n.Prefix.Addr().Next() }

// Attach creates a namespace for a node and joins it to the bridge with address 10.99.0.<host>.
func (n *Network) Attach(name string, host byte) *NetNode {
	tb := n.tb
	tb.Helper()
	a4 := n.Prefix.Addr().As4()
	a4[3] = host
	node := &NetNode{Netns: NewNetns(tb, name), Addr: netip.AddrFrom4(a4)}
	node.Public = node.Addr
	hubIf := fmt.Sprintf("vh%d", host)
	// Both ends are made in the hub namespace and one is moved: nothing is created in the host's.
	n.Hub.Run(tb, "ip", "link", "add", hubIf, "type", "veth", "peer", "name", "eth0", "netns", node.Pid())
	n.Hub.Run(tb, "ip", "link", "set", hubIf, "master", "br0")
	n.Hub.Run(tb, "ip", "link", "set", hubIf, "up")
	node.Run(tb, "ip", "addr", "add", node.Addr.String()+"/24", "dev", "eth0")
	node.Run(tb, "ip", "link", "set", "eth0", "up")
	n.mu.Lock()
	n.nodes = append(n.nodes, node)
	n.mu.Unlock()
	return node
}

// AttachNAT puts a node behind a NAT router of its own, like a host behind a home router: the
// router's namespace is attached to the bridge with address 10.99.0.<host> (the node's public
// address, NetNode.Public) and masquerades the node's private network 10.<100+host%100>.0.0/24,
// where the node has address .2 (NetNode.Addr) and the router .1. The router drops
// unsolicited inbound packets (conntrack state new on its bridge side), so other nodes reach
// the node only through a relay or by hole punching (a mapping the node's own packets opened:
// Linux masquerade keeps the source port, an endpoint-independent mapping).
func (n *Network) AttachNAT(name string, host byte) *NetNode {
	tb := n.tb
	tb.Helper()
	router := n.Attach("nat-"+name, host)
	lan := netip.AddrFrom4([4]byte{10, 100 + host%100, 0, 1})
	node := &NetNode{Netns: NewNetns(tb, name), Addr: lan.Next(), Public: router.Addr, NAT: router.Netns}
	// The pair is made in the router's namespace, one end moved to the node's.
	router.Run(tb, "ip", "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", node.Pid())
	router.Run(tb, "ip", "addr", "add", lan.String()+"/24", "dev", "lan0")
	router.Run(tb, "ip", "link", "set", "lan0", "up")
	node.Run(tb, "ip", "addr", "add", node.Addr.String()+"/24", "dev", "eth0")
	node.Run(tb, "ip", "link", "set", "eth0", "up")
	node.Run(tb, "ip", "route", "add", "default", "via", lan.String())
	router.Run(tb, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	router.Run(tb, "nft", strings.Join([]string{
		"add table ip nat",
		"add chain ip nat post { type nat hook postrouting priority 100 ; }",
		fmt.Sprintf("add rule ip nat post ip saddr %s oifname eth0 masquerade", netip.PrefixFrom(lan, 24).Masked()),
		// Dropped before conntrack confirms the flow, so a peer's early probe does not take
		// the tuple the node's own outbound mapping needs (masquerade would pick another port).
		"add table ip filter",
		"add chain ip filter wan_in { type filter hook input priority 0 ; }",
		"add rule ip filter wan_in iifname eth0 ct state new counter drop",
		"add chain ip filter wan_fwd { type filter hook forward priority 0 ; }",
		"add rule ip filter wan_fwd iifname eth0 ct state new counter drop",
	}, "\n"))
	return node
}

func (n *Network) nft(rules ...string) {
	n.tb.Helper()
	n.Hub.Run(n.tb, "nft", strings.Join(rules, "\n"))
}

// Isolate cuts the nodes off from every other node and from the hub (the relay included).
func (n *Network) Isolate(nodes ...*NetNode) {
	n.tb.Helper()
	var rules []string
	for _, x := range nodes {
		for _, ch := range []string{"fault_fwd", "fault_in", "fault_out"} {
			rules = append(rules,
				fmt.Sprintf("add rule bridge qnet %s ip saddr %s counter drop", ch, x.public()),
				fmt.Sprintf("add rule bridge qnet %s ip daddr %s counter drop", ch, x.public()))
		}
	}
	n.nft(rules...)
}

// Partition splits the given groups from each other: no packet between nodes of different
// groups. Nodes in no group, and the hub, still reach everyone.
func (n *Network) Partition(groups ...[]*NetNode) {
	n.tb.Helper()
	var rules []string
	for i, a := range groups {
		for j, b := range groups {
			if i == j || len(a) == 0 || len(b) == 0 {
				continue
			}
			rules = append(rules, fmt.Sprintf("add rule bridge qnet fault_fwd ip saddr %s ip daddr %s counter drop", addrSet(a), addrSet(b)))
		}
	}
	if len(rules) > 0 {
		n.nft(rules...)
	}
}

func addrSet(nodes []*NetNode) string {
	s := make([]string, len(nodes))
	for i, x := range nodes {
		s[i] = x.public().String()
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

// Heal removes every Isolate and Partition rule (RelayOnly stays).
func (n *Network) Heal() {
	n.tb.Helper()
	n.nft("flush chain bridge qnet fault_fwd", "flush chain bridge qnet fault_in", "flush chain bridge qnet fault_out")
}

// RelayOnly drops (on) or allows (off) UDP between nodes: mesh traffic then reaches other
// nodes only through a relay on the hub (TCP to the hub and STUN to the hub still pass).
func (n *Network) RelayOnly(on bool) {
	n.tb.Helper()
	if on {
		n.nft("flush chain bridge qnet mode_fwd", "add rule bridge qnet mode_fwd meta l4proto udp counter drop")
	} else {
		n.nft("flush chain bridge qnet mode_fwd")
	}
}

// Dropped is the number of packets the fault and relay-only rules have dropped so far (Heal
// resets the fault rules' share).
func (n *Network) Dropped() int64 {
	n.tb.Helper()
	out, err := n.Hub.Output("nft", "list", "table", "bridge", "qnet")
	if err != nil {
		n.tb.Fatalf("nft list: %v: %s", err, out)
	}
	var total int64
	fields := strings.Fields(string(out))
	for i := 0; i+2 < len(fields); i++ {
		if fields[i] == "counter" && fields[i+1] == "packets" {
			v, err := strconv.ParseInt(fields[i+2], 10, 64)
			if err != nil {
				n.tb.Fatalf("nft counter %q: %v", fields[i+2], err)
			}
			total += v
		}
	}
	return total
}

// Rules is the hub's current ruleset (for logs).
func (n *Network) Rules() string {
	out, err := n.Hub.Output("nft", "list", "table", "bridge", "qnet")
	if err != nil {
		return fmt.Sprintf("nft list: %v: %s", err, out)
	}
	return string(out)
}
