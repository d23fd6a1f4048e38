package acl

import (
	"errors"
	"fmt"
	"strings"
)

// ResourceType is Kafka's resource type code.
type ResourceType int8

// Kafka's resource types.
const (
	ResourceUnknown         ResourceType = 0
	ResourceAny             ResourceType = 1
	ResourceTopic           ResourceType = 2
	ResourceGroup           ResourceType = 3
	ResourceCluster         ResourceType = 4
	ResourceTransactionalID ResourceType = 5
	ResourceDelegationToken ResourceType = 6
	ResourceUser            ResourceType = 7
)

// PatternType is Kafka's resource pattern type code.
type PatternType int8

// Kafka's pattern types. ANY and MATCH are for filters only.
const (
	PatternUnknown  PatternType = 0
	PatternAny      PatternType = 1
	PatternMatch    PatternType = 2
	PatternLiteral  PatternType = 3
	PatternPrefixed PatternType = 4
)

// Operation is Kafka's ACL operation code.
type Operation int8

// Kafka's operations. ANY is for filters only.
const (
	OpUnknown         Operation = 0
	OpAny             Operation = 1
	OpAll             Operation = 2
	OpRead            Operation = 3
	OpWrite           Operation = 4
	OpCreate          Operation = 5
	OpDelete          Operation = 6
	OpAlter           Operation = 7
	OpDescribe        Operation = 8
	OpClusterAction   Operation = 9
	OpDescribeConfigs Operation = 10
	OpAlterConfigs    Operation = 11
	OpIdempotentWrite Operation = 12
	OpCreateTokens    Operation = 13
	OpDescribeTokens  Operation = 14
)

// Permission is Kafka's permission type code.
type Permission int8

// Kafka's permission types. ANY is for filters only.
const (
	PermissionUnknown Permission = 0
	PermissionAny     Permission = 1
	PermissionDeny    Permission = 2
	PermissionAllow   Permission = 3
)

// ClusterName is the only name of the CLUSTER resource.
const ClusterName = "kafka-cluster"

// Wildcard is the wildcard resource name, principal ("User:*") name and host.
const Wildcard = "*"

// WildcardPrincipal matches every principal.
const WildcardPrincipal = "User:*"

// Resource is a concrete resource an operation is asked on.
type Resource struct {
	Type ResourceType
	Name string
}

// Binding is one ACL: a resource pattern and an entry.
type Binding struct {
	ResourceType ResourceType
	ResourceName string
	PatternType  PatternType
	Principal    string
	Host         string
	Operation    Operation
	Permission   Permission
}

// Filter selects bindings (DescribeAcls, DeleteAcls). A nil name, principal or host matches
// any; ResourceAny, PatternAny, OpAny and PermissionAny match any. PatternMatch with a name
// matches the bindings that would apply to a resource of that name (literal equal, literal
// "*", prefixed with a prefix of it).
type Filter struct {
	ResourceType ResourceType
	ResourceName *string
	PatternType  PatternType
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   Permission
}

// ErrInvalid is wrapped by Validate's errors (Kafka answers INVALID_REQUEST).
var ErrInvalid = errors.New("invalid ACL")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func (t ResourceType) concrete() bool { return t >= ResourceTopic && t <= ResourceUser }
func (o Operation) concrete() bool    { return o >= OpAll && o <= OpDescribeTokens }

// Validate checks that b can be stored, with Kafka's rules: concrete resource type, LITERAL
// or PREFIXED pattern, concrete operation, ALLOW or DENY, a principal "Type:name", a
// non-empty resource name and host, and "kafka-cluster" as the CLUSTER's name.
func (b Binding) Validate() error {
	switch {
	case !b.ResourceType.concrete():
		return invalid("resource type %d", b.ResourceType)
	case b.PatternType != PatternLiteral && b.PatternType != PatternPrefixed:
		return invalid("pattern type %d (LITERAL or PREFIXED)", b.PatternType)
	case !b.Operation.concrete():
		return invalid("operation %d", b.Operation)
	case b.Permission != PermissionAllow && b.Permission != PermissionDeny:
		return invalid("permission type %d (ALLOW or DENY)", b.Permission)
	case b.ResourceName == "":
		return invalid("empty resource name")
	case b.Host == "":
		return invalid("empty host")
	case b.ResourceType == ResourceCluster && b.ResourceName != ClusterName:
		return invalid("the only valid name for the CLUSTER resource is %s", ClusterName)
	}
	if i := strings.IndexByte(b.Principal, ':'); i <= 0 || i == len(b.Principal)-1 {
		return invalid("principal %q is not of the form Type:name", b.Principal)
	}
	return nil
}

// Validate checks a filter's enums (UNKNOWN anywhere is INVALID_REQUEST in Kafka).
func (f Filter) Validate() error {
	switch {
	case f.ResourceType == ResourceUnknown || f.ResourceType > ResourceUser || f.ResourceType < 0:
		return invalid("filter resource type %d", f.ResourceType)
	case f.PatternType == PatternUnknown || f.PatternType > PatternPrefixed || f.PatternType < 0:
		return invalid("filter pattern type %d", f.PatternType)
	case f.Operation == OpUnknown || f.Operation > OpDescribeTokens || f.Operation < 0:
		return invalid("filter operation %d", f.Operation)
	case f.Permission == PermissionUnknown || f.Permission > PermissionAllow || f.Permission < 0:
		return invalid("filter permission type %d", f.Permission)
	}
	return nil
}

// Matches reports whether f selects b.
func (f Filter) Matches(b Binding) bool {
	if f.ResourceType != ResourceAny && f.ResourceType != b.ResourceType {
		return false
	}
	if !f.matchesPattern(b) {
		return false
	}
	if f.Principal != nil && *f.Principal != b.Principal {
		return false
	}
	if f.Host != nil && *f.Host != b.Host {
		return false
	}
	if f.Operation != OpAny && f.Operation != b.Operation {
		return false
	}
	return f.Permission == PermissionAny || f.Permission == b.Permission
}

func (f Filter) matchesPattern(b Binding) bool {
	switch f.PatternType {
	case PatternAny:
		return f.ResourceName == nil || *f.ResourceName == b.ResourceName
	case PatternMatch:
		if f.ResourceName == nil {
			return true
		}
		return applies(b, *f.ResourceName)
	default:
		return f.PatternType == b.PatternType && (f.ResourceName == nil || *f.ResourceName == b.ResourceName)
	}
}

// applies reports whether b's pattern covers a resource named name (types aside).
func applies(b Binding, name string) bool {
	switch b.PatternType {
	case PatternLiteral:
		return b.ResourceName == name || b.ResourceName == Wildcard
	case PatternPrefixed:
		return strings.HasPrefix(name, b.ResourceName)
	}
	return false
}

// implies reports whether a binding for operation have grants want.
func implies(have, want Operation) bool {
	if have == want || have == OpAll {
		return true
	}
	switch want {
	case OpDescribe:
		return have == OpRead || have == OpWrite || have == OpDelete || have == OpAlter
	case OpDescribeConfigs:
		return have == OpAlterConfigs
	}
	return false
}

// supportedOperations are the operations Kafka defines for each resource type (its
// AclEntry.supportedOperations): what an authorized-operations bitfield may contain.
var supportedOperations = map[ResourceType][]Operation{
	ResourceTopic:           {OpRead, OpWrite, OpCreate, OpDescribe, OpDelete, OpAlter, OpDescribeConfigs, OpAlterConfigs},
	ResourceGroup:           {OpRead, OpDescribe, OpDelete},
	ResourceCluster:         {OpCreate, OpClusterAction, OpDescribeConfigs, OpAlterConfigs, OpIdempotentWrite, OpAlter, OpDescribe},
	ResourceTransactionalID: {OpDescribe, OpWrite},
	ResourceDelegationToken: {OpDescribe},
	ResourceUser:            {OpCreateTokens, OpDescribeTokens},
}

// OperationsBitfield is Kafka's authorized-operations field (Metadata v8+, DescribeGroups
// v3+, DescribeCluster): bit op set for every operation of t's supported set that allowed
// says yes to. allowed nil means no authorizer: every supported operation, as Kafka answers
// without one.
func OperationsBitfield(t ResourceType, allowed func(Operation) bool) int32 {
	var bits int32
	for _, op := range supportedOperations[t] {
		if allowed == nil || allowed(op) {
			bits |= 1 << uint(op)
		}
	}
	return bits
}
