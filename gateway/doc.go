// Package gateway is the Kafka front door: it accepts Kafka client connections (TCP :9092 by
// default), decodes requests with kafkawire and kmsg, turns them into broker ops
// (package broker/brokerop) and hands those to a [Backend]. It never touches storage and
// never assumes the backend is in-process: every op crosses the Backend interface (the
// declared brokerop.Service) as plain data. The in-process backend is the broker itself
// (`up-single`); over the mesh it is gateway/cluster.Cluster, which routes each partition to the
// broker that owns it through broker/brokermesh's caller.
//
// # Connections
//
// Serve survives running out of descriptors or memory while accepting (EMFILE, ENFILE,
// ENOBUFS, ENOMEM, aborted connections): it logs once, backs off (5 ms doubling to 1 s) and
// accepts again, so the connections it serves keep working; other accept errors end Serve.
//
// Each connection has a reader goroutine that reads a frame, decodes it and runs the
// handler, and a writer goroutine that writes the answers. Answers leave strictly in request
// order, as Apache Kafka does. Handlers run one at a time in arrival order, so the effects
// of requests on one connection (appends of produce requests to a partition in particular)
// keep that order too. Produce is staged: its append happens on the reader in order, and
// its wait for fsync happens on the writer, so a client with several produce requests in
// flight on one connection gets them appended in order and sharing group commits. A
// malformed, truncated, oversize (above Config.MaxFrameBytes, default 100 MiB) or
// unknown-key request, or a version outside the advertised range, closes that connection
// only; other connections and stored data are unaffected. ApiVersions with a too-new version
// is answered (v0 body, UNSUPPORTED_VERSION, our ApiVersions range) as Kafka does (KIP-511).
//
// An idle connection costs about 11 KB (its two goroutines' stacks, a 512-byte read buffer
// and the answer queue; BenchmarkIdleConnections measures it); TestManyConnections serves
// 2,000 connections at once, each with a produce in flight.
//
// Fetch answers are written with one writev: the encoded fields are copied into the
// connection's buffer, but a record set of 4 KiB or more goes to the socket straight from
// the backend's bytes (kafkawire.FetchWriter, byte-identical to kmsg's encoding). The gateway
// fetches with the Backend's FetchPooled: those bytes may live in read buffers the backend
// reuses (broker.Broker's do), and the writer releases them once the answer is written.
//
// On the TLS connections of SSL and SASL_SSL listeners those slices are sealed where they
// are (no copy into the buffer first), and the TLS records of each answer leave together:
// crypto/tls writes every record of at most 16 KiB with a syscall of its own, so a
// recordBatcher under each tls.Conn (tlsbatch.go) collects them and writes 256 KiB at a
// time. NewTLSConfig turns off dynamic record sizing (full records from the first byte).
//
// # Listeners and security
//
// Serve and ServeConn serve PLAINTEXT; ServeListener serves a Kafka listener of any security
// protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL; ParseListeners reads Kafka's
// "SASL_SSL://:9093,PLAINTEXT://:9092"), several at once, each advertising its own port.
// SSL and SASL_SSL use Config.TLS (NewTLSConfig: TLS 1.2+, the certificate from a
// CertReloader that re-reads its files when they change, client certificates as Kafka's
// ssl.client.auth asks); the TLS handshake completes before the first frame is read. SASL
// (sasl.go has the rules) offers PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 over the backend's
// SCRAM credentials (Backend.DescribeUserScramCredentials; sasl_mech.go is the server side of
// RFC 5802/7677 with Kafka's nonce rule), OAUTHBEARER when Config.SASL.OAuthBearer is set
// (sasl_oauth.go; oauth_jwt.go validates JWTs against a JWKS file, the session ending with
// the token), re-authentication after Config.SASL.ReauthAfter (KIP-368), and closes
// connections as Kafka does. Failed authentications are throttled per source address
// (sasl_throttle.go: a lockout after Config.SASL.BruteForce.Burst failures, and
// Config.SASL.FailedAuthDelay before each failure answer). Request.Principal gives the connection's
// principal ("User:alice", "User:CN=alice,O=example" for a client certificate on SSL,
// "User:ANONYMOUS"). With Config.Authorizer.Enabled every API authorizes that principal
// with Kafka's ACLs (authz.go has the rules, package broker/acl the decision; each API's
// file says what it asks for) and DescribeAcls/CreateAcls/DeleteAcls manage them
// (api_acls.go).
//
// # Registering an API (contract for other files of this package)
//
// Each Kafka API is served from the file of its concern (api_produce.go, api_fetch.go, …;
// consumer-group APIs in group_*.go); apis.go registers them all from one table, with the
// versions advertised:
//
//	{Key: kafkawire.KeyFindCoordinator, MinVersion: 0, MaxVersion: 6, Handle: typed(handleFindCoordinator)},
//
// typed adapts a handler that is given the decoded request and the empty response of its
// kind and fills it (an API that may answer nothing or fail the connection is a plain
// Handler, as Fetch):
//
//	func handleFindCoordinator(ctx context.Context, r *Request, req *kmsg.FindCoordinatorRequest, resp *kmsg.FindCoordinatorResponse) {
//		host, port := r.Advertised()
//		...
//		bresp, err := r.Server.Backend().DescribeGroups(ctx, breq) // one method per broker op
//		... // an op no broker serves answers an error wrapping brokerop.ErrUnsupported
//	}
//
// Other packages may add an API with Register (from an init function).
//
// Rules:
//   - Register panics on a duplicate key; ApiVersions is built from the table (sorted by key),
//     so a registered API is advertised with exactly its [MinVersion, MaxVersion].
//   - The handler gets r.Body already decoded by kmsg at the requested version (always within
//     the registered range) and must return a response of the same key; the server sets the
//     response's version to the request's before encoding, and picks the response header.
//   - Return (nil, nil) to send no response at all (Produce with acks=0).
//   - Return a non-nil error only for a request that cannot be answered (the connection is
//     closed and the error logged). Backend failures are answered with Kafka error codes:
//     [BackendErrorCode] maps a Go error from a Backend call to a retriable Kafka code.
//   - Every broker op is a method of [Backend] (brokerop.Service). A backend that does not
//     serve an op (groups, configs, producer ids) answers an error wrapping
//     brokerop.ErrUnsupported; answer that with the Kafka error code Kafka uses when the
//     feature is missing, never a panic. Only register an API when its file can serve it.
//   - r.Advertised() is the host and port of the listener the request came in on (use it,
//     not r.Server.Advertised(), in answers that name the broker); r.Principal() the
//     connection's principal.
//   - r.Server gives Backend(), Advertised() (host, port clients must dial: Config
//     AdvertisedHost/AdvertisedPort, env RAFKA_KAFKA_CLIENT_HOST/RAFKA_KAFKA_CLIENT_PORT in
//     cmd/gateway), NodeID() (the Kafka broker id the gateway presents, 0 by default),
//     ClusterID() and Logger() (*slog.Logger).
//   - Handlers run on the connection's reader goroutine, one request at a time in arrival
//     order; ctx is cancelled when the server closes. A handler may block (long-poll) but
//     must return when ctx is done. An API whose answer waits on something slow that may
//     overlap with later requests registers Stage instead of Handle: the stage step runs
//     on the reader in order, and the finish function it returns runs on the connection's
//     writer goroutine, also in order (Produce does this to overlap fsync waits).
//   - The request frame may be recycled once the handler (or stage step) returns only for
//     Produce; every other API's decoded byte fields (e.g. group member metadata) stay valid
//     and may be kept by the backend. A connection keeps its last produce frame of up to 64
//     MiB to read its next request into (a producer spread over many partitions sends 1-20
//     MiB requests; reallocating them cost more server CPU than validating their records).
//
// # Versions served
//
// ApiVersions v0–4, Metadata v0–12, Produce v0–12, Fetch v0–16, ListOffsets v0–7,
// CreateTopics v0–7, DeleteTopics v0–6, InitProducerID v0–5 (idempotent and transactional
// producers; api_init_producer_id.go), SaslHandshake v0–1, SaslAuthenticate v0–2 (sasl.go),
// DescribeUserScramCredentials v0 and AlterUserScramCredentials v0 (api_scram.go),
// DeleteRecords v0–2, OffsetForLeaderEpoch v0–4, DescribeLogDirs v0–4, DescribeClientQuotas
// v0–1, AlterClientQuotas v0–1 (api_records.go), DescribeAcls, CreateAcls and DeleteAcls v0–3
// (api_acls.go), and the transaction APIs of api_txn.go: AddPartitionsToTxn v0–5,
// AddOffsetsToTxn v0–4, EndTxn v0–5, TxnOffsetCommit v0–5 (transaction.version 2 where the
// backend serves it), ListTransactions v0–1,
// DescribeTransactions v0, DescribeProducers v0 (FindCoordinator key type 1 names the gateway,
// as for groups), and the share-group APIs of api_share.go (KIP-932): ShareGroupHeartbeat v1,
// ShareGroupDescribe v1, ShareFetch v1–2, ShareAcknowledge v1–2, DescribeShareGroupOffsets
// v0–1, AlterShareGroupOffsets v0, DeleteShareGroupOffsets v0. Produce v0–v2 carry legacy message sets (magic 0/1):
// the gateway converts them to uncompressed RecordBatch v2 before the broker sees them (the
// broker stores v2 only). Fetch v0–v3 answer message sets: the gateway down-converts the
// stored batches (magic 0 for v0/v1, magic 1 for v2/v3; kafkawire.DownConvert), so a client
// that assumes an old broker without asking ApiVersions (librdkafka with
// api.version.request=false, broker.version.fallback=0.9.0) produces and consumes.
// Serving Produce v0 matters beyond old clients: librdkafka compresses with gzip, snappy or
// lz4 only when Produce v0 is in the advertised range. Produce v12+ (transactions v2, topic
// ids), Fetch v17+ and ListOffsets v8+ are not advertised.
//
// # Decisions where Kafka leaves room
//
//   - Metadata v0–v3 carry no allow_auto_topic_creation flag: they auto-create, like Kafka
//     with auto.create.topics.enable=true; v4+ honour the flag. Config.DisableAutoCreate
//     turns auto-creation off for every version.
//   - The gateway presents itself (NodeID, advertised host/port) as the leader of every
//     single-owner partition, with leader epoch 0 and replicas/ISR = [NodeID]. A replicated
//     partition (issue #16, brokers on the metadata quorum) shows its leader epoch,
//     replicas, ISR and offline replicas as the quorum records them, with this server as the
//     leader clients dial, and no other broker is listed: several broker ids at one
//     host:port break clients that key connections by address (kafkajs sends a Produce
//     without its partitions and reports success; librdkafka's consumers hop and stall).
//     The server routes to the leader broker. With Config.DirectBrokers (a broker's own
//     Kafka listener, package gateway/direct; a gateway started with -direct-brokers) a
//     broker that registered a valid Kafka listener is listed at that address and named as
//     the leader of the partitions it leads, so clients talk to the leader brokers directly;
//     partitions led by brokers without one still name this server.
//     CreateTopics takes -1 or a positive replication factor; the backend judges it (one
//     broker: only 1; a quorum: at most its live brokers, else INVALID_REPLICATION_FACTOR).
//   - Fetch sessions (v7+, KIP-227) follow Apache Kafka's FetchSessionCache
//     (fetch_session.go has the rules): one cache per Server shared by all connections,
//     Config.FetchSessions.Slots sessions (default 1000, Kafka's
//     max.incremental.fetch.session.cache.slots; negative turns sessions off), Kafka's
//     eviction order (stale after 2 minutes unused, then non-privileged before privileged,
//     smaller before larger, only sessions older than 2 minutes). Beyond Kafka, all sessions
//     together hold at most Config.FetchSessions.MaxPartitions partitions (default
//     1,000,000; a cached partition costs about 80 bytes, so the cache stays under ~80 MB):
//     a session that would grow past it is dropped as if evicted. Incremental answers hold
//     only partitions with records, a changed high watermark or log start offset, or an
//     error. The broker is still asked for every partition of the session on each fetch;
//     Server.FetchSessionStats counts full and incremental fetches and their sizes.
//   - Topic ids (Fetch v13+, Metadata v10+, DeleteTopics v6+) are resolved through a cache
//     filled from Backend.Metadata and refreshed on a miss; an id still unknown after the
//     refresh is UNKNOWN_TOPIC_ID.
//
// # Quotas
//
// producer_byte_rate and consumer_byte_rate (stored by the backend, read every
// Config.Quotas.Refresh or after an AlterClientQuotas through this gateway) are enforced per
// gateway with a token bucket per quota entity (quota.go): an over-quota Produce or Fetch is
// answered at once with throttle_time_ms and its connection muted for that time, as Kafka
// does (KIP-219). User quotas apply to the connection's principal (its name without
// "User:"; ANONYMOUS when not authenticated); request_percentage
// and controller_mutation_rate are stored, not enforced. With several gateways each enforces
// the full quota on its own connections.
//
// # Logging and time
//
// Config.Logger receives connection and request errors (nil: discard). The idle timeout is a
// socket deadline and so uses the wall clock. Fetch-session eviction reads
// Config.FetchSessions.Clock (nil: the wall clock).
package gateway
