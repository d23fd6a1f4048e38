package gateway

import "testing"

// Kafka's quota precedence: the most specific entity wins, user before client id, exact
// before default; default parts give each actual name its own bucket.
func TestQuotaPrecedence(t *testing.T) {
	alice, c1 := "alice", "c1"
	q := &quotas{byEntity: map[string]map[string]float64{}}
	set := func(user, client *string, rate float64) {
		q.byEntity[quotaEntityKey(user, client)] = map[string]float64{quotaProduce: rate}
	}
	check := func(user, client string, want float64, wantKey string) {
		t.Helper()
		r, k, ok := q.match(quotaProduce, user, client)
		if !ok || r != want || (wantKey != "" && k != wantKey) {
			t.Fatalf("(%s, %s): rate %v key %q ok %v, want %v %q", user, client, r, k, ok, want, wantKey)
		}
	}
	if _, _, ok := q.match(quotaProduce, "alice", "c1"); ok {
		t.Fatal("a quota without any entity")
	}
	set(nil, &defaultName, 8) // client-id=<default>
	check("bob", "x", 8, quotaProduce+"\x02"+quotaEntityKey(nil, strp("x")))
	set(nil, &c1, 7) // client-id=c1
	check("bob", "c1", 7, "")
	set(&defaultName, nil, 6) // user=<default>
	check("bob", "c1", 6, quotaProduce+"\x02"+quotaEntityKey(strp("bob"), nil))
	set(&defaultName, &defaultName, 5)
	check("bob", "c1", 5, "")
	set(&defaultName, &c1, 4)
	check("bob", "c1", 4, "")
	check("bob", "c2", 5, "")
	set(&alice, nil, 3)
	check("alice", "c1", 3, "")
	check("bob", "c1", 4, "")
	set(&alice, &defaultName, 2)
	check("alice", "c9", 2, quotaProduce+"\x02"+quotaEntityKey(strp("alice"), strp("c9")))
	set(&alice, &c1, 1)
	check("alice", "c1", 1, "")
	if quotaUser("User:alice") != "alice" || quotaUser(AnonymousPrincipal) != "ANONYMOUS" {
		t.Fatal("principal to quota user")
	}
}

func strp(s string) *string { return &s }
