// Package kafkawire is the thin server-side layer around franz-go's kmsg: it reads
// size-prefixed Kafka frames, parses request headers, decodes request bodies with kmsg, and
// encodes responses with the right response header. It knows nothing of brokers, storage or
// the mesh.
//
// # Frames
//
// Every Kafka request and response is a frame:
//
//	+----------------+------------------------------+
//	| size (int32 BE)| size bytes of header + body  |
//	+----------------+------------------------------+
//
// [FrameReader] reads one frame at a time. A size larger than the configured maximum
// (default [DefaultMaxFrame], 100 MiB) or a negative size is [ErrFrameTooLarge]; the caller
// closes the connection, because the stream cannot be resynchronised.
//
// # Request header
//
//	v0: api_key int16, api_version int16, correlation_id int32
//	v1: v0 + client_id nullable string (int16 length, -1 = null)
//	v2: v1 + tagged fields (uvarint count, then tag/size/bytes), used by flexible versions
//
// Header v0 is only used by ControlledShutdown v0 (key 7), which no client sends to a
// gateway; it is parsed for completeness. Whether a request uses header v2 depends on its
// key and version (kmsg's IsFlexible).
//
// # Response header
//
//	v0: correlation_id int32
//	v1: v0 + tagged fields (a single 0 byte: no tags)
//
// Flexible responses use header v1, except ApiVersions (key 18), whose response header is
// always v0 so that a client can parse it before it knows which versions the server speaks
// (KIP-511). [AppendResponse] applies that rule.
//
// # Version negotiation
//
// [ParseHeader] never rejects a version: the caller checks the version against the range it
// serves before decoding the body with [DecodeBody]. Apache Kafka closes the connection on an
// unknown api key or an unsupported version, except for ApiVersions, which it answers with a
// v0 body carrying UNSUPPORTED_VERSION (35) and the full list of supported ranges, so that
// the client can retry with a version both sides know. [UnsupportedApiVersions] builds that
// answer.
//
// A frame's buffer grows with the bytes actually received (in 1 MiB steps past the first
// MiB), so a peer that announces a large frame and sends little cannot make the server
// allocate the announced size. While waiting for a frame a FrameReader holds only a 512-byte
// buffer; a 64 KiB read-ahead buffer comes from a shared pool for larger frames and pipelined
// requests and goes back as soon as every byte read ahead was returned, so idle connections
// cost little.
//
// # Record batches
//
// RecordBatch v2 bytes inside Produce and Fetch are opaque here: kmsg hands them over as raw
// bytes and the broker validates them (CRC, counts). One exception is the legacy message
// set (magic 0/1) of Produce v0–v2, which [ConvertMessageSet] turns into a single
// uncompressed RecordBatch v2 (checking each message's CRC-32 and inflating gzip, snappy —
// raw or xerial-framed — and lz4 wrappers), because the broker stores v2 batches only.
// The other is [HasTransactionalBatch], which reads batch headers only (the attributes of
// each batch), for the gateway's authorization of transactional Produce.
package kafkawire
