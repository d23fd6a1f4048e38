// Package acl is Kafka's ACL model and authorizer, I/O-free: resource types, pattern types,
// operations and permissions numbered as Kafka numbers them on the wire (CreateAcls,
// DescribeAcls, DeleteAcls, APIs 30–32), bindings (a resource pattern and an entry: principal,
// host, operation, permission), filters (ANY/MATCH, as DescribeAcls and DeleteAcls take them)
// and the pure decision Authorizer.Authorize(principal, host, operation, resource) → allow or
// deny. Nothing here reads a file or the network: the broker keeps bindings durably
// (broker.ACLs over an ACLStore) and the gateway holds an Authorizer built from them.
//
// Rules (Kafka's StandardAuthorizer):
//   - A super user is allowed everything.
//   - The bindings that apply to a resource are those of its type whose pattern is LITERAL
//     with the resource's name, LITERAL "*" (the wildcard resource), or PREFIXED with a prefix
//     of the name.
//   - Deny wins: an applicable DENY binding whose principal is the caller or "User:*", whose
//     host is the caller's or "*", and whose operation is the one asked or ALL refuses.
//   - Otherwise an applicable ALLOW binding likewise allows. DESCRIBE is implied by READ,
//     WRITE, DELETE and ALTER; DESCRIBE_CONFIGS by ALTER_CONFIGS.
//   - When no binding applies to the resource at all, AllowIfNoACL decides
//     (allow.everyone.if.no.acl.found; false by default: only super users).
//
// needs.go is Kafka's operation map as values (acl.Need: an operation on a resource type,
// e.g. ProduceTopic, GroupMember): the gateway asks them per Kafka API and the brokers per
// KafkaOp (brokerop.AuthorizeOp), so both planes decide a request alike. Cached remembers an
// Authorizer's decisions (bounded); Decisions rebuilds them when the ACL set changes.
package acl
