package acl

import "testing"

// OperationsBitfield without an authorizer is every operation Kafka supports for the type
// (Kafka's bit values), and with one only what it allows.
func TestOperationsBitfield(t *testing.T) {
	for _, tc := range []struct {
		typ  ResourceType
		want int32
	}{
		{ResourceTopic, 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11},
		{ResourceGroup, 1<<3 | 1<<6 | 1<<8},
		{ResourceCluster, 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12},
		{ResourceTransactionalID, 1<<4 | 1<<8},
		{ResourceDelegationToken, 1 << 8},
		{ResourceUser, 1<<13 | 1<<14},
	} {
		if got := OperationsBitfield(tc.typ, nil); got != tc.want {
			t.Errorf("type %d: %b, want %b", tc.typ, got, tc.want)
		}
	}
	onlyRead := func(op Operation) bool { return op == OpRead }
	if got := OperationsBitfield(ResourceTopic, onlyRead); got != 1<<3 {
		t.Errorf("READ only: %b", got)
	}
	if got := OperationsBitfield(ResourceCluster, onlyRead); got != 0 {
		t.Errorf("READ is not a cluster operation: %b", got)
	}
}
