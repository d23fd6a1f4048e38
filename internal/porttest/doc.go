// Package porttest hands tests loopback ports to give a child process (a broker's -bind, an
// admin listener) that no other process is given before the child binds them.
//
// The usual recipe, bind port 0 and close, leaves a window: until the child binds, the
// kernel may hand the same port to anyone binding port 0, and with many test binaries
// running at once (CI runs every package in parallel) somebody does, now and then. A broker
// seeded with that address then reaches another process's mesh node ("peer proved a
// different node id").
//
// So the ports come from outside the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range), which bind(0) and outgoing connections never
// use, and each is claimed across processes by an exclusive flock on a file under
// os.TempDir()/meshkafka-ports, held until the test binary exits. A port is handed out only
// when both TCP and UDP can bind it on 127.0.0.1 at that moment. Where the ephemeral range
// leaves no room (fewer than 1,000 ports outside it above 10000), ports come from bind(0) as
// before, still claimed by the lock, so two test binaries never get the same one.
package porttest
