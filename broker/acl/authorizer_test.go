package acl

import "testing"

func lit(t ResourceType, name, principal, host string, op Operation, perm Permission) Binding {
	return Binding{ResourceType: t, ResourceName: name, PatternType: PatternLiteral, Principal: principal, Host: host, Operation: op, Permission: perm}
}

func pre(t ResourceType, name, principal, host string, op Operation, perm Permission) Binding {
	b := lit(t, name, principal, host, op, perm)
	b.PatternType = PatternPrefixed
	return b
}

func TestAuthorizeTable(t *testing.T) {
	const alice, bob = "User:alice", "User:bob"
	topic := func(n string) Resource { return Resource{Type: ResourceTopic, Name: n} }
	group := func(n string) Resource { return Resource{Type: ResourceGroup, Name: n} }
	cases := []struct {
		name      string
		bindings  []Binding
		allowNone bool
		principal string
		host      string
		op        Operation
		res       Resource
		want      bool
	}{
		{"no acl, default deny", nil, false, alice, "1.2.3.4", OpRead, topic("a"), false},
		{"no acl, allow everyone", nil, true, alice, "1.2.3.4", OpRead, topic("a"), true},
		{"super user", []Binding{lit(ResourceTopic, "a", alice, "*", OpAll, PermissionDeny)}, false, "User:admin", "h", OpWrite, topic("a"), true},
		{"literal allow", []Binding{lit(ResourceTopic, "a", alice, "*", OpWrite, PermissionAllow)}, false, alice, "h", OpWrite, topic("a"), true},
		{"literal other name", []Binding{lit(ResourceTopic, "a", alice, "*", OpWrite, PermissionAllow)}, false, alice, "h", OpWrite, topic("ab"), false},
		{"literal other op", []Binding{lit(ResourceTopic, "a", alice, "*", OpWrite, PermissionAllow)}, false, alice, "h", OpRead, topic("a"), false},
		{"literal other principal", []Binding{lit(ResourceTopic, "a", alice, "*", OpWrite, PermissionAllow)}, false, bob, "h", OpWrite, topic("a"), false},
		{"acl exists for others, allow-if-none does not apply", []Binding{lit(ResourceTopic, "a", alice, "*", OpWrite, PermissionAllow)}, true, bob, "h", OpWrite, topic("a"), false},
		{"acl on other resource, allow-if-none applies", []Binding{lit(ResourceTopic, "a", alice, "*", OpWrite, PermissionAllow)}, true, bob, "h", OpWrite, topic("b"), true},
		{"prefixed allow", []Binding{pre(ResourceTopic, "app-", alice, "*", OpRead, PermissionAllow)}, false, alice, "h", OpRead, topic("app-x"), true},
		{"prefixed is not literal", []Binding{pre(ResourceTopic, "app-", alice, "*", OpRead, PermissionAllow)}, false, alice, "h", OpRead, topic("app"), false},
		{"literal is not prefix", []Binding{lit(ResourceTopic, "app-", alice, "*", OpRead, PermissionAllow)}, false, alice, "h", OpRead, topic("app-x"), false},
		{"wildcard resource", []Binding{lit(ResourceTopic, "*", alice, "*", OpRead, PermissionAllow)}, false, alice, "h", OpRead, topic("zz"), true},
		{"wildcard principal", []Binding{lit(ResourceTopic, "a", "User:*", "*", OpRead, PermissionAllow)}, false, bob, "h", OpRead, topic("a"), true},
		{"host must match", []Binding{lit(ResourceTopic, "a", alice, "10.0.0.1", OpRead, PermissionAllow)}, false, alice, "10.0.0.2", OpRead, topic("a"), false},
		{"host matches", []Binding{lit(ResourceTopic, "a", alice, "10.0.0.1", OpRead, PermissionAllow)}, false, alice, "10.0.0.1", OpRead, topic("a"), true},
		{"deny wins over allow", []Binding{lit(ResourceTopic, "a", alice, "*", OpRead, PermissionAllow), lit(ResourceTopic, "a", alice, "*", OpRead, PermissionDeny)}, false, alice, "h", OpRead, topic("a"), false},
		{"prefixed deny wins over literal allow", []Binding{lit(ResourceTopic, "app-x", alice, "*", OpAll, PermissionAllow), pre(ResourceTopic, "app", "User:*", "*", OpWrite, PermissionDeny)}, false, alice, "h", OpWrite, topic("app-x"), false},
		{"deny on other op leaves allow", []Binding{lit(ResourceTopic, "a", alice, "*", OpAll, PermissionAllow), lit(ResourceTopic, "a", alice, "*", OpWrite, PermissionDeny)}, false, alice, "h", OpRead, topic("a"), true},
		{"deny ALL refuses every op", []Binding{lit(ResourceTopic, "a", alice, "*", OpRead, PermissionAllow), lit(ResourceTopic, "*", alice, "*", OpAll, PermissionDeny)}, false, alice, "h", OpRead, topic("a"), false},
		{"ALL allows any op", []Binding{lit(ResourceTopic, "a", alice, "*", OpAll, PermissionAllow)}, false, alice, "h", OpDelete, topic("a"), true},
		{"READ implies DESCRIBE", []Binding{lit(ResourceTopic, "a", alice, "*", OpRead, PermissionAllow)}, false, alice, "h", OpDescribe, topic("a"), true},
		{"WRITE implies DESCRIBE", []Binding{lit(ResourceTopic, "a", alice, "*", OpWrite, PermissionAllow)}, false, alice, "h", OpDescribe, topic("a"), true},
		{"DELETE implies DESCRIBE", []Binding{lit(ResourceTopic, "a", alice, "*", OpDelete, PermissionAllow)}, false, alice, "h", OpDescribe, topic("a"), true},
		{"ALTER implies DESCRIBE", []Binding{lit(ResourceTopic, "a", alice, "*", OpAlter, PermissionAllow)}, false, alice, "h", OpDescribe, topic("a"), true},
		{"CREATE does not imply DESCRIBE", []Binding{lit(ResourceTopic, "a", alice, "*", OpCreate, PermissionAllow)}, false, alice, "h", OpDescribe, topic("a"), false},
		{"DESCRIBE does not imply READ", []Binding{lit(ResourceTopic, "a", alice, "*", OpDescribe, PermissionAllow)}, false, alice, "h", OpRead, topic("a"), false},
		{"ALTER_CONFIGS implies DESCRIBE_CONFIGS", []Binding{lit(ResourceTopic, "a", alice, "*", OpAlterConfigs, PermissionAllow)}, false, alice, "h", OpDescribeConfigs, topic("a"), true},
		{"deny READ does not deny implied DESCRIBE", []Binding{lit(ResourceTopic, "a", alice, "*", OpWrite, PermissionAllow), lit(ResourceTopic, "a", alice, "*", OpRead, PermissionDeny)}, false, alice, "h", OpDescribe, topic("a"), true},
		{"types are separate", []Binding{lit(ResourceTopic, "g", alice, "*", OpRead, PermissionAllow)}, false, alice, "h", OpRead, group("g"), false},
		{"group read", []Binding{lit(ResourceGroup, "g", alice, "*", OpRead, PermissionAllow)}, false, alice, "h", OpRead, group("g"), true},
		{"cluster", []Binding{lit(ResourceCluster, ClusterName, alice, "*", OpIdempotentWrite, PermissionAllow)}, false, alice, "h", OpIdempotentWrite, Resource{ResourceCluster, ClusterName}, true},
		{"transactional id prefixed", []Binding{pre(ResourceTransactionalID, "tx-", alice, "*", OpWrite, PermissionAllow)}, false, alice, "h", OpWrite, Resource{ResourceTransactionalID, "tx-1"}, true},
		{"invalid binding ignored", []Binding{{ResourceType: ResourceTopic, ResourceName: "a", PatternType: PatternMatch, Principal: alice, Host: "*", Operation: OpRead, Permission: PermissionAllow}}, false, alice, "h", OpRead, topic("a"), false},
	}
	for _, c := range cases {
		a := New(Config{SuperUsers: []string{"User:admin"}, AllowIfNoACL: c.allowNone}, c.bindings)
		if got := a.Authorize(c.principal, c.host, c.op, c.res); got != c.want {
			t.Errorf("%s: Authorize = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAuthorizeAny(t *testing.T) {
	const alice = "User:alice"
	a := New(Config{}, []Binding{lit(ResourceTopic, "a", alice, "*", OpWrite, PermissionAllow)})
	if !a.AuthorizeAny(alice, "h", OpWrite, ResourceTopic) {
		t.Error("WRITE on topic a should count as WRITE on some topic")
	}
	if a.AuthorizeAny("User:bob", "h", OpWrite, ResourceTopic) {
		t.Error("bob has no WRITE anywhere")
	}
	a = New(Config{}, []Binding{lit(ResourceTopic, "a", alice, "*", OpWrite, PermissionAllow), lit(ResourceTopic, "*", alice, "*", OpWrite, PermissionDeny)})
	if a.AuthorizeAny(alice, "h", OpWrite, ResourceTopic) {
		t.Error("a wildcard deny refuses every topic")
	}
	a = New(Config{}, []Binding{lit(ResourceTopic, "a", alice, "*", OpWrite, PermissionAllow), pre(ResourceTopic, "a", alice, "*", OpWrite, PermissionDeny)})
	if a.AuthorizeAny(alice, "h", OpWrite, ResourceTopic) {
		t.Error("topic a is denied by prefix, so no topic is writable")
	}
	// A prefixed allow is covered by a prefixed deny of the same or a shorter prefix, not a
	// longer one (Kafka's authorizeByResourceType).
	for _, c := range []struct {
		deny string
		want bool
	}{{"app-", false}, {"ap", false}, {"app-x", true}} {
		a = New(Config{}, []Binding{pre(ResourceTopic, "app-", alice, "*", OpWrite, PermissionAllow), pre(ResourceTopic, c.deny, alice, "*", OpWrite, PermissionDeny)})
		if got := a.AuthorizeAny(alice, "h", OpWrite, ResourceTopic); got != c.want {
			t.Errorf("allow prefix app-, deny prefix %s: AuthorizeAny = %v, want %v", c.deny, got, c.want)
		}
	}
}

func TestFilter(t *testing.T) {
	s := func(v string) *string { return &v }
	bs := []Binding{
		lit(ResourceTopic, "a", "User:alice", "*", OpRead, PermissionAllow),
		lit(ResourceTopic, "*", "User:bob", "*", OpWrite, PermissionDeny),
		pre(ResourceTopic, "ap", "User:alice", "h1", OpWrite, PermissionAllow),
		lit(ResourceGroup, "a", "User:alice", "*", OpRead, PermissionAllow),
	}
	any := Filter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpAny, Permission: PermissionAny}
	cases := []struct {
		name string
		f    func(Filter) Filter
		want []int
	}{
		{"any", func(f Filter) Filter { return f }, []int{0, 1, 2, 3}},
		{"topic", func(f Filter) Filter { f.ResourceType = ResourceTopic; return f }, []int{0, 1, 2}},
		{"name a any pattern", func(f Filter) Filter { f.ResourceName = s("a"); return f }, []int{0, 3}},
		{"literal", func(f Filter) Filter { f.PatternType = PatternLiteral; return f }, []int{0, 1, 3}},
		{"prefixed", func(f Filter) Filter { f.PatternType = PatternPrefixed; return f }, []int{2}},
		{"match apple", func(f Filter) Filter {
			f.PatternType = PatternMatch
			f.ResourceName = s("apple")
			f.ResourceType = ResourceTopic
			return f
		}, []int{1, 2}},
		{"match a", func(f Filter) Filter { f.PatternType = PatternMatch; f.ResourceName = s("a"); return f }, []int{0, 1, 3}},
		{"principal", func(f Filter) Filter { f.Principal = s("User:bob"); return f }, []int{1}},
		{"host", func(f Filter) Filter { f.Host = s("h1"); return f }, []int{2}},
		{"operation", func(f Filter) Filter { f.Operation = OpWrite; return f }, []int{1, 2}},
		{"permission", func(f Filter) Filter { f.Permission = PermissionDeny; return f }, []int{1}},
	}
	for _, c := range cases {
		f := c.f(any)
		if err := f.Validate(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got []int
		for i, b := range bs {
			if f.Matches(b) {
				got = append(got, i)
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: matched %v, want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: matched %v, want %v", c.name, got, c.want)
				break
			}
		}
	}
	if (Filter{ResourceType: ResourceUnknown, PatternType: PatternAny, Operation: OpAny, Permission: PermissionAny}).Validate() == nil {
		t.Error("UNKNOWN resource type filter should be invalid")
	}
}

func TestValidate(t *testing.T) {
	ok := lit(ResourceTopic, "a", "User:alice", "*", OpRead, PermissionAllow)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*Binding){
		func(b *Binding) { b.ResourceType = ResourceAny },
		func(b *Binding) { b.PatternType = PatternMatch },
		func(b *Binding) { b.Operation = OpAny },
		func(b *Binding) { b.Permission = PermissionAny },
		func(b *Binding) { b.Principal = "alice" },
		func(b *Binding) { b.Principal = "User:" },
		func(b *Binding) { b.Host = "" },
		func(b *Binding) { b.ResourceName = "" },
		func(b *Binding) { b.ResourceType = ResourceCluster },
	}
	for i, f := range bad {
		b := ok
		f(&b)
		if b.Validate() == nil {
			t.Errorf("case %d: %+v validated", i, b)
		}
	}
}
