package controller

import (
	"reflect"
	"testing"

	"github.com/meshkafka/meshkafka/broker"
)

// setReplicas fills TopicRecord.Replicas when the broker has the field.
func TestSetReplicas(t *testing.T) {
	var rec broker.TopicRecord
	reps := [][]uint64{{1, 2, 3}}
	setReplicas(&rec, reps)
	f := reflect.ValueOf(rec).FieldByName("Replicas")
	if !f.IsValid() {
		t.Skip("broker.TopicRecord has no Replicas field yet")
	}
	if got := f.Interface().([][]uint64); !reflect.DeepEqual(got, reps) {
		t.Errorf("Replicas = %v, want %v", got, reps)
	}
}
