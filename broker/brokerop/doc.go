// Package brokerop is the contract between the Kafka gateway and the brokers: the op codes and
// the request/response structs of every KafkaOp. Both sides import it and nothing else of each
// other. The gateway calls a Backend (in-process, or over the mesh in a later step) with these
// structs; the broker answers them.
//
// Structs are plain data (no pointers to shared state, no interfaces) so that a carrier can
// encode them compactly. Error fields hold Kafka error codes (0 = none) so that a Kafka error
// survives the hop unchanged; a non-nil Go error from a Backend means the op did not reach a
// broker or no answer came back (the gateway maps that to a retriable Kafka error).
//
// Op codes 0x02–0x0B follow Rafka's table; 0x0C and up are ours.
package brokerop
