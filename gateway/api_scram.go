package gateway

// DescribeUserScramCredentials (key 50) v0 and AlterUserScramCredentials (key 51) v0.
//
//   - Credentials live with the brokers (Backend.DescribeUserScramCredentials /
//     AlterUserScramCredentials; a file on the broker, the metadata quorum later). Describe
//     answers each user's mechanisms and iterations only, as Kafka does; salts and keys
//     never leave the gateway.
//   - Null or empty Users describes every user with a credential. A user named twice is
//     DUPLICATE_RESOURCE, an unknown one RESOURCE_NOT_FOUND.
//   - Alter upsertions carry a salted password (the client salts; kadm and Kafka's tools do)
//     and deletions a mechanism; the broker's rules are Kafka's (broker/credentials.go):
//     4096–16384 iterations, UNSUPPORTED_SASL_MECHANISM for a mechanism other than
//     SCRAM-SHA-256 (1) and SCRAM-SHA-512 (2), DUPLICATE_RESOURCE for one user and mechanism
//     twice, RESOURCE_NOT_FOUND for deleting what does not exist.
//   - A backend without the ops answers INVALID_REQUEST, as other
//     admin APIs do; a backend that cannot be reached answers its retriable code.
//   - With authorization on (authz.go), Describe needs DESCRIBE and Alter ALTER on the
//     cluster (CLUSTER_AUTHORIZATION_FAILED otherwise).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

func handleDescribeUserScramCredentials(ctx context.Context, r *Request, req *kmsg.DescribeUserSCRAMCredentialsRequest, resp *kmsg.DescribeUserSCRAMCredentialsResponse) {
	var breq brokerop.DescribeUserScramCredentialsReq
	for _, u := range req.Users {
		breq.Users = append(breq.Users, u.Name)
	}
	if !r.authorizedCluster(ctx, acl.DescribeCluster) {
		resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Message)
		return
	}
	bresp, err := r.Server.Backend().DescribeUserScramCredentials(ctx, &breq)
	if err != nil {
		resp.ErrorCode = BackendErrorCode(err)
		if unsupported(err) {
			resp.ErrorCode = kerr.InvalidRequest.Code
		}
		resp.ErrorMessage = kmsg.StringPtr(err.Error())
		return
	}
	resp.ErrorCode = bresp.ErrorCode
	if bresp.ErrorMessage != "" {
		resp.ErrorMessage = kmsg.StringPtr(bresp.ErrorMessage)
	}
	for _, u := range bresp.Users {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorCode = u.Name, u.ErrorCode
		if u.ErrorMessage != "" {
			res.ErrorMessage = kmsg.StringPtr(u.ErrorMessage)
		}
		for _, c := range u.Credentials {
			ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
			ci.Mechanism, ci.Iterations = c.Mechanism, c.Iterations
			res.CredentialInfos = append(res.CredentialInfos, ci)
		}
		resp.Results = append(resp.Results, res)
	}
}

func handleAlterUserScramCredentials(ctx context.Context, r *Request, req *kmsg.AlterUserSCRAMCredentialsRequest, resp *kmsg.AlterUserSCRAMCredentialsResponse) {
	var breq brokerop.AlterUserScramCredentialsReq
	var users []string
	seen := map[string]bool{}
	note := func(n string) {
		if !seen[n] {
			seen[n] = true
			users = append(users, n)
		}
	}
	for _, d := range req.Deletions {
		note(d.Name)
		breq.Deletions = append(breq.Deletions, brokerop.ScramDeletion{Name: d.Name, Mechanism: d.Mechanism})
	}
	for _, u := range req.Upsertions {
		note(u.Name)
		breq.Upsertions = append(breq.Upsertions, brokerop.ScramUpsertion{Name: u.Name, Mechanism: u.Mechanism,
			Iterations: u.Iterations, Salt: u.Salt, SaltedPassword: u.SaltedPassword})
	}
	if !r.authorizedCluster(ctx, acl.AlterCluster) {
		for _, u := range users {
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode = u, kerr.ClusterAuthorizationFailed.Code
			resp.Results = append(resp.Results, res)
		}
		return
	}
	bresp, err := r.Server.Backend().AlterUserScramCredentials(ctx, &breq)
	if err != nil {
		code := BackendErrorCode(err)
		if unsupported(err) {
			code = kerr.InvalidRequest.Code
		}
		for _, u := range users {
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode, res.ErrorMessage = u, code, kmsg.StringPtr(err.Error())
			resp.Results = append(resp.Results, res)
		}
		return
	}
	for _, b := range bresp.Results {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorCode = b.User, b.ErrorCode
		if b.ErrorMessage != "" {
			res.ErrorMessage = kmsg.StringPtr(b.ErrorMessage)
		}
		resp.Results = append(resp.Results, res)
	}
}
