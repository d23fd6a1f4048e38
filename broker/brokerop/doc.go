// Package brokerop is the contract between the Kafka gateway and the brokers: the declared
// Service interface (service.go), the op codes and the request/response structs of every
// KafkaOp. Both sides import it and nothing else of each other. The gateway calls a Service
// (in-process, or over the mesh through brokermesh) with these structs; the broker serves it.
//
// The codec, op table, dispatch switch (Dispatch), Unimplemented, Parts and Intercept are
// generated from the Service declaration and the structs by internal/cmd/opgen (ops_gen.go;
// run go generate ./broker/brokerop after changing them; a test fails when the file is stale).
// NoQuorum (noquorum.go, by hand) answers just the metadata-quorum ops as Unimplemented does,
// for a single-broker Service whose broker and group coordinator both embed Unimplemented.
//
// Structs are plain data (no pointers to shared state, no interfaces) so that a carrier can
// encode them compactly. Error fields hold Kafka error codes (0 = none) so that a Kafka error
// survives the hop unchanged; a non-nil Go error from a Backend means the op did not reach a
// broker or no answer came back (the gateway maps that to a retriable Kafka error).
//
// Op codes 0x02–0x0B follow Rafka's table; 0x0C and up are ours. codes.go lists every op code
// in one table, by range.
//
// # Wire
//
// Over the mesh every op is one QUIC bi-stream carrying one frame each way:
//
//	tag u8 (the op Code) | length (unsigned LEB128) | payload
//
// The request payload is postcard(RequestHeader{RequestID, DeadlineMs, TraceParent, TraceState})
// — then, only when the tag has FlagPrincipal (0x80), the header's extension: the Kafka
// principal a gateway acts for and the client's host (frame.go; the broker authorizes it:
// AuthorizeOp, authz.go, over package acl's operation map) — followed by postcard(<op request>); the response payload is postcard(ResponseHeader{RequestID,
// Status, Message}) followed, for Status 0, by postcard(<op response>). codec.go gives the
// encoding rules (primitives: internal/postcard); LAYOUT.md (generated from these structs and checked by a test) gives every op's
// exact field layout and byte examples, e.g. a Fetch of topic "t" partition 0 from offset 5:
//
//	03 16                 tag 0x03 (fetch), payload length 22
//	01 f403 00 00         header: request id 1, deadline 500 ms, no traceparent/tracestate
//	e807 02 80808001 00   MaxWaitMs 500, MinBytes 1, MaxBytes 1 MiB, IsolationLevel 0
//	01 0174 00 0a 80808001  1 partition: "t", partition 0, offset 5, max bytes 1 MiB
//
// The structs that carry record bytes (a []byte field tagged kafkaop:"records": Produce
// requests, Fetch answers) get a generated encoder that writes them as slices with the record
// sets by reference (EncodeRequestBuffers, EncodeResponseBuffers; vecframe.go): the same bytes,
// written without copying records into a frame first. ReadFrameInto reads a payload into memory the
// caller pools.
package brokerop
