package controller

import (
	"reflect"

	"github.com/meshkafka/meshkafka/broker"
)

// The broker side of replicated partitions (package broker, issue #16) is built at the same
// time as this package: these two adapters are where the controller meets it.

// partitionStateHooker is the broker's partition state hook: fn is called when this broker
// becomes a replicated partition's leader and when the ISR it sees changes.
type partitionStateHooker interface {
	OnPartitionState(fn func(topic string, p int32, leader, term uint64, isr []uint64))
}

var replicasType = reflect.TypeFor[[][]uint64]()

// setReplicas gives a topic record its replica lists (nil: single-owner topic): the field
// TopicRecord.Replicas, set through reflection while the broker that has it is being merged
// (a plain assignment once it is on main; until then a broker without the field gets none).
func setReplicas(rec *broker.TopicRecord, reps [][]uint64) {
	if f := reflect.ValueOf(rec).Elem().FieldByName("Replicas"); f.IsValid() && f.CanSet() && f.Type() == replicasType {
		f.Set(reflect.ValueOf(reps))
	}
}
