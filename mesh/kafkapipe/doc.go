// Package kafkapipe carries Kafka client connections over the mesh: Kafka from anywhere a
// mesh node reaches, through NATs and relays, by NodeId or ticket.
//
// Wire (ALPN "/meshkafka/kafka/0"): every Kafka connection is one bidirectional QUIC stream.
// The opener first writes a preamble, then the Kafka bytes pass through unchanged:
//
//	u8   version   0
//	u16  length    big-endian, 1..1024
//	[n]  advertise UTF-8 "host:port": the address the client was given for this gateway
//
// The gateway answers the client as if it listened on that address (Metadata,
// FindCoordinator and DescribeCluster name it), so a client behind a local proxy
// (`mesh kafka-proxy`) or using Dialer keeps coming back through the mesh without any rewriting
// of Kafka messages.
//
// Listen gives the gateway a net.Listener of such streams; Dialer gives a franz-go kgo.Dialer
// (and any dialer-shaped client) a function that reaches a gateway over the mesh whatever host
// the client asks for; Proxy forwards a local TCP listener's connections.
package kafkapipe
