// Package cli holds what every binary under cmd/ repeats: its start-up and exit (Main), flag
// parsing (Parse), the embedded broker and its group coordinator (OpenBroker), the logger,
// the node identity, the mesh start-up flags (-relay, -stun, -mdns, -mesh-id), the
// control-plane and tracing settings read from the environment, the Kafka listener security
// flags cmd/gateway and cmd/broker share (KafkaSecurity: listeners, TLS, SASL, ACLs), and the
// mapping of an environment variable onto a flag's default.
//
// It is the only place, with the binaries' own main packages, that reads the environment or
// registers flags (deps_test.go checks this): libraries take what they need as Config/Options
// fields, which the binaries fill from here. The environment is read through a Getenv func
// (os.Getenv in main, a map in tests), never directly.
//
// Environment variables and the flags or settings they feed:
//
//	RAFKA_RELAY_URL           -relay default
//	RAFKA_STUN_SERVERS        -stun default
//	RAFKA_MDNS=1              -mdns default
//	RAFKA_MESH_ID             -mesh-id default (meshctl.Config.MeshID)
//	RAFKA_GOSSIP_INTERVAL_MS  meshctl.Config.Interval
//	RAFKA_STALENESS_MS        meshctl.Config.Staleness
//	MESH_DISABLE_GRO=1        endpoint.Options.DisableGRO (through meshnode.Config)
//	OTEL_*                    telemetry.Config (see package telemetry)
//
// A flag given on the command line wins over its environment variable.
package cli
