// Package cluster runs a meshkafka cluster as real processes for end-to-end tests: cmd/broker,
// cmd/gateway and cmd/relay built once per test binary (Bins), N brokers and M gateways started
// as child processes, each with its own data directory and mesh identity, and the faults a
// Jepsen-style test needs:
//
//   - processes: Kill (SIGKILL), Pause/Resume (SIGSTOP/SIGCONT), Stop (SIGTERM), Restart, and
//     Wipe (the data directory deleted, optionally keeping the identity: a replaced disk);
//   - network (Options.Netns, root only): each broker and gateway in its own network namespace,
//     all joined by a bridge in a hub namespace (Network); nftables rules on the bridge isolate
//     nodes, split them into groups and heal, and RelayOnly drops UDP between nodes so that
//     the mesh has to use the cmd/relay on the hub (Options.Relay); with Options.NAT every
//     broker sits behind a NAT router of its own (masquerade, unsolicited inbound dropped), so
//     brokers reach each other through the relay until hole punching finds a direct path.
//
// Nothing is created in the host's network namespace: clients dial through the hub
// (Cluster.Dialer), a node's loopback (an admin listener) through the node (Node.DialContext,
// Node.HTTPClient). Every process and namespace is killed when the test that made the cluster ends (a broker or
// gateway restarted in a subtest lives on past it), even on
// failure, and by Pdeathsig if the test binary dies; on failure the tail of every process's
// output is logged and the full output is written to the test's artifact directory.
//
// Proc, Netns and Bins are also the building blocks of the other process suites
// (interop/meshkafka, the NAT topology test in interop). The package is test harness: only
// tests import it.
package cluster
