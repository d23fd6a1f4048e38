package acl

import "strings"

// Authorizer decides requests from a fixed set of bindings. It is immutable once built and
// safe for concurrent use; build a new one when the bindings change.
type Authorizer struct {
	superUsers   map[string]bool
	allowIfNoACL bool
	// byType holds the bindings per resource type: literal ones by name (the wildcard "*"
	// among them) and prefixed ones in a list.
	byType map[ResourceType]*typeIndex
}

type typeIndex struct {
	literal  map[string][]Binding
	prefixed []Binding
}

// Config is what an Authorizer is built with besides its bindings.
type Config struct {
	// SuperUsers are principals ("User:admin") allowed everything.
	SuperUsers []string
	// AllowIfNoACL allows a request on a resource no binding applies to (Kafka's
	// allow.everyone.if.no.acl.found).
	AllowIfNoACL bool
}

// New builds an Authorizer over bindings (invalid ones are ignored: they never match).
func New(cfg Config, bindings []Binding) *Authorizer {
	a := &Authorizer{superUsers: map[string]bool{}, allowIfNoACL: cfg.AllowIfNoACL, byType: map[ResourceType]*typeIndex{}}
	for _, u := range cfg.SuperUsers {
		a.superUsers[u] = true
	}
	for _, b := range bindings {
		if b.Validate() != nil {
			continue
		}
		ix := a.byType[b.ResourceType]
		if ix == nil {
			ix = &typeIndex{literal: map[string][]Binding{}}
			a.byType[b.ResourceType] = ix
		}
		if b.PatternType == PatternLiteral {
			ix.literal[b.ResourceName] = append(ix.literal[b.ResourceName], b)
		} else {
			ix.prefixed = append(ix.prefixed, b)
		}
	}
	return a
}

// IsSuperUser reports whether principal is a super user.
func (a *Authorizer) IsSuperUser(principal string) bool { return a.superUsers[principal] }

// Authorize decides whether principal, connected from host, may do op on res.
func (a *Authorizer) Authorize(principal, host string, op Operation, res Resource) bool {
	if a.superUsers[principal] {
		return true
	}
	var applicable [][]Binding
	if ix := a.byType[res.Type]; ix != nil {
		applicable = append(applicable, ix.literal[res.Name])
		if res.Name != Wildcard {
			applicable = append(applicable, ix.literal[Wildcard])
		}
		var pre []Binding
		for _, b := range ix.prefixed {
			if strings.HasPrefix(res.Name, b.ResourceName) {
				pre = append(pre, b)
			}
		}
		applicable = append(applicable, pre)
	}
	any := false
	for _, bs := range applicable {
		for _, b := range bs {
			any = true
			if b.Permission == PermissionDeny && entryMatches(b, principal, host) && (b.Operation == op || b.Operation == OpAll) {
				return false
			}
		}
	}
	if !any {
		return a.allowIfNoACL
	}
	for _, bs := range applicable {
		for _, b := range bs {
			if b.Permission == PermissionAllow && entryMatches(b, principal, host) && implies(b.Operation, op) {
				return true
			}
		}
	}
	return false
}

// AuthorizeAny reports whether principal may do op on at least one resource of type t:
// Kafka's authorizeByResourceType (an idempotent producer with WRITE on any topic needs no
// IDEMPOTENT_WRITE on the cluster). Deny bindings on the wildcard resource or every prefix
// refuse; otherwise an ALLOW binding for the principal grants unless a DENY covers its
// resource (a LITERAL one: the resource is denied; a PREFIXED one: a PREFIXED DENY with the
// same or a shorter prefix).
func (a *Authorizer) AuthorizeAny(principal, host string, op Operation, t ResourceType) bool {
	if a.superUsers[principal] {
		return true
	}
	ix := a.byType[t]
	if ix == nil {
		return a.allowIfNoACL
	}
	for _, b := range ix.literal[Wildcard] {
		if b.Permission == PermissionDeny && entryMatches(b, principal, host) && (b.Operation == op || b.Operation == OpAll) {
			return false
		}
	}
	for _, p := range ix.prefixed {
		if p.ResourceName == "" && p.Permission == PermissionDeny && entryMatches(p, principal, host) && (p.Operation == op || p.Operation == OpAll) {
			return false
		}
	}
	allowed := func(b Binding) bool {
		if b.Permission != PermissionAllow || !entryMatches(b, principal, host) || !implies(b.Operation, op) {
			return false
		}
		// An allowed resource is usable only if no deny covers that very resource.
		if b.PatternType == PatternLiteral {
			return a.Authorize(principal, host, op, Resource{Type: t, Name: b.ResourceName})
		}
		// A prefixed allow is covered by a prefixed deny of the same or a shorter prefix
		// (Kafka's authorizeByResourceType).
		for _, d := range ix.prefixed {
			if d.Permission == PermissionDeny && entryMatches(d, principal, host) && (d.Operation == op || d.Operation == OpAll) &&
				strings.HasPrefix(b.ResourceName, d.ResourceName) {
				return false
			}
		}
		return true
	}
	for _, bs := range ix.literal {
		for _, b := range bs {
			if allowed(b) {
				return true
			}
		}
	}
	for _, b := range ix.prefixed {
		if allowed(b) {
			return true
		}
	}
	return false
}

func entryMatches(b Binding, principal, host string) bool {
	return (b.Principal == principal || b.Principal == WildcardPrincipal) && (b.Host == host || b.Host == Wildcard)
}
