package brokerop

// Security ops: SCRAM credentials (Kafka's DescribeUserScramCredentials and
// AlterUserScramCredentials, APIs 50/51) and ACLs. Op codes: codes.go, 0x40–0x47.
//
// Unlike Kafka's DescribeUserScramCredentials answer, the describe op carries the stored keys:
// the gateway authenticates SASL clients with them (the gateway's Kafka API 50 answers only
// mechanism and iterations). A credential is what Kafka stores, never a password: salt,
// iterations, StoredKey and ServerKey (package internal/scramkey derives them).

// DescribeUserScramCredentialsReq asks for the credentials of Users (nil: every user).
type DescribeUserScramCredentialsReq struct {
	Users []string
}

// DescribeUserScramCredentialsResp answers in request order (every user, sorted by name,
// for a nil Users). ErrorCode is a request-level error.
type DescribeUserScramCredentialsResp struct {
	ErrorCode    int16
	ErrorMessage string
	Users        []ScramUser
}

// ScramUser is one user's credentials, or the error that names why there are none
// (RESOURCE_NOT_FOUND for an unknown user, DUPLICATE_RESOURCE for a user asked twice).
type ScramUser struct {
	Name         string
	ErrorCode    int16
	ErrorMessage string
	Credentials  []ScramCredential
}

// ScramCredential is what is stored for one user and mechanism (Mechanism: 1 SCRAM-SHA-256,
// 2 SCRAM-SHA-512, as Kafka numbers them).
type ScramCredential struct {
	Mechanism  int8
	Iterations int32
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
}

// AlterUserScramCredentialsReq deletes and upserts credentials, as Kafka's API 51.
type AlterUserScramCredentialsReq struct {
	Deletions  []ScramDeletion
	Upsertions []ScramUpsertion
}

// ScramDeletion removes one user's credential of one mechanism.
type ScramDeletion struct {
	Name      string
	Mechanism int8
}

// ScramUpsertion sets one user's credential of one mechanism from a salted password (the
// client salts; the broker derives and stores StoredKey and ServerKey).
type ScramUpsertion struct {
	Name           string
	Mechanism      int8
	Iterations     int32
	Salt           []byte
	SaltedPassword []byte
}

// AlterUserScramCredentialsResp has one result per user named in the request.
type AlterUserScramCredentialsResp struct {
	Results []ScramAlterResult
}

// ScramAlterResult is the outcome for one user.
type ScramAlterResult struct {
	User         string
	ErrorCode    int16
	ErrorMessage string
}

// ACL ops (Kafka's DescribeAcls, CreateAcls, DeleteAcls, APIs 29, 30, 31): the broker keeps the
// bindings durably; the gateway authorizes with them (package broker/acl has the model; the
// enums are Kafka's codes).

// AclBinding is one ACL, as Kafka's CreateAcls carries it.
type AclBinding struct {
	ResourceType int8
	ResourceName string
	PatternType  int8
	Principal    string
	Host         string
	Operation    int8
	Permission   int8
}

// AclFilter selects bindings; a Has* flag false means "any" for the string beside it.
type AclFilter struct {
	ResourceType    int8
	HasResourceName bool
	ResourceName    string
	PatternType     int8
	HasPrincipal    bool
	Principal       string
	HasHost         bool
	Host            string
	Operation       int8
	Permission      int8
}

// DescribeAclsReq asks for the bindings Filter selects.
type DescribeAclsReq struct {
	Filter AclFilter
}

// DescribeAclsResp holds the selected bindings, or a request-level error.
type DescribeAclsResp struct {
	ErrorCode    int16
	ErrorMessage string
	Bindings     []AclBinding
}

// CreateAclsReq stores bindings.
type CreateAclsReq struct {
	Creations []AclBinding
}

// CreateAclsResp has one result per creation, in order.
type CreateAclsResp struct {
	Results []AclResult
}

// AclResult is one creation's outcome.
type AclResult struct {
	ErrorCode    int16
	ErrorMessage string
}

// DeleteAclsReq deletes the bindings each filter selects.
type DeleteAclsReq struct {
	Filters []AclFilter
}

// DeleteAclsResp has one result per filter, in order.
type DeleteAclsResp struct {
	Results []AclDeleteResult
}

// AclDeleteResult is one filter's outcome: the bindings it deleted.
type AclDeleteResult struct {
	ErrorCode    int16
	ErrorMessage string
	Deleted      []AclBinding
}
