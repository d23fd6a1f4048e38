package brokerop

// Producer ops (transaction ops are in txn.go). Op codes: codes.go, 0x30–0x3F.

// InitProducerIDReq asks for a producer id for an idempotent (non-transactional) producer:
// Kafka's InitProducerID with a null transactional id (a transactional id is
// InitTxnProducerIDReq, txn.go).
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
