package kafkawire

// Kafka error codes used by the gateway and the broker. The values are Kafka's
// (org.apache.kafka.common.protocol.Errors); names drop the ERR_ prefix.
const (
	ErrNone                        int16 = 0
	ErrUnknownServerError          int16 = -1
	ErrOffsetOutOfRange            int16 = 1
	ErrCorruptMessage              int16 = 2
	ErrUnknownTopicOrPartition     int16 = 3
	ErrInvalidFetchSize            int16 = 4
	ErrLeaderNotAvailable          int16 = 5
	ErrNotLeaderOrFollower         int16 = 6
	ErrRequestTimedOut             int16 = 7
	ErrBrokerNotAvailable          int16 = 8
	ErrMessageTooLarge             int16 = 10
	ErrNetworkException            int16 = 13
	ErrCoordinatorNotAvailable     int16 = 15
	ErrNotCoordinator              int16 = 16
	ErrInvalidTopicException       int16 = 17
	ErrRecordListTooLarge          int16 = 18
	ErrInvalidRequiredAcks         int16 = 21
	ErrInvalidTimestamp            int16 = 32
	ErrUnsupportedVersion          int16 = 35
	ErrTopicAlreadyExists          int16 = 36
	ErrInvalidPartitions           int16 = 37
	ErrInvalidReplicationFactor    int16 = 38
	ErrInvalidRequest              int16 = 42
	ErrUnsupportedForMessageFormat int16 = 43
	ErrPolicyViolation             int16 = 44
	ErrInvalidConfig               int16 = 40
	ErrKafkaStorageError           int16 = 56
	ErrFetchSessionIDNotFound      int16 = 70
	ErrInvalidFetchSessionEpoch    int16 = 71
	ErrUnsupportedCompressionType  int16 = 76
	ErrUnknownTopicID              int16 = 100
	ErrInconsistentTopicID         int16 = 103
	ErrFetchSessionTopicIDError    int16 = 106
)

// Retriable reports whether a client may retry a request that failed with code (the subset
// of Kafka's retriable errors that this project produces).
func Retriable(code int16) bool {
	switch code {
	case ErrCorruptMessage, ErrUnknownTopicOrPartition, ErrLeaderNotAvailable,
		ErrNotLeaderOrFollower, ErrRequestTimedOut, ErrBrokerNotAvailable, ErrNetworkException,
		ErrCoordinatorNotAvailable, ErrNotCoordinator, ErrKafkaStorageError, ErrUnknownTopicID:
		return true
	}
	return false
}
