package brokerop

// Idempotent-producer ops. Codes 0x30–0x37 are reserved for producer ops (admin ops use
// 0x20–0x27, group ops 0x28–0x2F).
const (
	OpInitProducerID Code = 0x30
)

// InitProducerIDReq asks for a producer id for an idempotent (non-transactional) producer:
// Kafka's InitProducerID with a null transactional id. The gateway answers a transactional id
// itself (transactions are not supported), so it never reaches a broker.
//
// ProducerID/ProducerEpoch are what the client already holds (-1/-1 for a new producer;
// InitProducerID v3+ sends its current pair to bump its epoch, KIP-360). As in Kafka's
// non-transactional case, the broker answers a bump with a fresh producer id at epoch 0.
type InitProducerIDReq struct {
	ProducerID    int64
	ProducerEpoch int16
}

// InitProducerIDResp is the allocated producer id and epoch, or an error code (ids -1).
type InitProducerIDResp struct {
	ErrorCode     int16
	ProducerID    int64
	ProducerEpoch int16
}
