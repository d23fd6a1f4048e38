// Package brokermesh carries KafkaOps between gateways and brokers over the mesh.
//
// One QUIC bi-stream per call, on ALPN "/meshkafka/kafkaop/0". The caller writes one frame
// (brokerop: op-code tag, LEB128 length, postcard RequestHeader + op request) and finishes its
// send side; the broker answers with one frame (ResponseHeader + op response) and finishes.
// Many calls run at once on one connection, each on its own stream, so a slow fetch never
// holds up a produce.
//
// Failure rules:
//   - Unknown tag: the broker resets the stream (CancelRead/CancelWrite with
//     ErrCodeUnknownOp) and records a mesh.frame.unsupported_tag span; the connection and its
//     other streams carry on.
//   - Malformed frame or payload: the stream is reset with ErrCodeMalformed and an error span is
//     recorded; the connection carries on.
//   - A peer whose NodeId is not in the broker's trust list gets its connection closed with
//     application error ErrCodeUntrusted and the message "node <id> is not trusted by this broker",
//     logged once per node per minute (refusal.go; memory bounded however many keys try). The
//     Caller turns that close into a *NotTrustedError (still ErrUnavailable; KafkaErrorCode is
//     CLUSTER_AUTHORIZATION_FAILED), which a RefusalNotice logs once per broker with the fix.
//   - A request naming a Kafka principal (the header's extension: a gateway acting for its
//     client) is checked by the server's Guard (guard.go): refused with StatusUnauthorized and
//     CLUSTER_AUTHORIZATION_FAILED from a node that may not act for principals (no gateway
//     role), and, with authorization on, against the ACLs with Kafka's code (the Caller
//     returns a *brokerop.RefusedError the gateway answers with). The Caller names the
//     principal of its context (brokerop.WithActing); AsNode callers (broker to broker) never do.
//   - The request's DeadlineMs becomes the handler's context deadline; if the caller's context is
//     cancelled it resets the stream, which cancels the handler's context.
//
// Stream credit: a call's stream frees its slot (the caller may have 100 open, endpoint.
// MaxIncomingBidi) only when quic-go's MAX_STREAMS reaches the caller. Sent as soon as the
// answer is acknowledged, that frame took a packet of its own, and the caller, with two
// ack-eliciting packets in hand, acknowledged at once: four packets per call. The server
// accepts with endpoint.Conn.AcceptStreamHeld and gives finished calls' credit back just
// before it writes the next answer, so the frame rides in the answer's packet: one packet each
// way per call when calls come one at a time (BenchmarkCall: packets per call halved, CPU per
// call −24–34%). It holds at most 8 calls' credit, and none while calls in progress and held
// reach 50, so a caller never waits for a stream because of it.
//
// Fetch answers move without copying record bytes into frames: the broker writes its pooled
// read buffers to the stream by reference (the generated vectored encoder, brokerop) and the
// gateway reads the answer into a pooled payload it releases after the Kafka answer is
// written (Caller.StartFetch, Caller.FetchPooled).
//
// This package is the carrier only: Caller (the gateway side of one broker, a
// brokerop.Service whose op methods are generated), Server (the broker side, dispatching to a
// brokerop.Service through the generated switch), frames, trust and the mesh opener. Local
// (local.go) is an in-memory opener to a Server of the same process, for a broker's own Kafka
// listener calling its broker as it would call any other (produces keep their order). The
// gateway's view of the cluster (placement, routing, read-ahead) is package gateway/cluster.
//
// Tracing is a decorator around the Service on each side (trace.go), not code in the carrier:
// TraceCalls wraps a Caller in mesh.kafkaop.sent spans, the Server runs its Service wrapped
// in TraceHandled's mesh.kafkaop.handle spans, and StoreSpans adds the broker's store/read
// spans. The carrier only moves the span context, as W3C traceparent/tracestate in the
// request header, so one Kafka request is one trace across processes.
package brokermesh
