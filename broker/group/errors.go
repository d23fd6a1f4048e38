package group

// Kafka error codes the coordinator answers with (values from the Kafka protocol).
const (
	errNone                    int16 = 0
	errUnknownServer           int16 = -1
	errOffsetMetadataTooLarge  int16 = 12
	errCoordinatorNotAvailable int16 = 15
	errIllegalGeneration       int16 = 22
	errInconsistentGroupProto  int16 = 23
	errInvalidGroupID          int16 = 24
	errUnknownMemberID         int16 = 25
	errInvalidSessionTimeout   int16 = 26
	errRebalanceInProgress     int16 = 27
	errNonEmptyGroup           int16 = 68
	errGroupIDNotFound         int16 = 69
	errMemberIDRequired        int16 = 79
	errFencedInstanceID        int16 = 82
	errGroupSubscribedToTopic  int16 = 86
)
