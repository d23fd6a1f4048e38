package gateway

// DescribeAcls (key 29), CreateAcls (key 30) and DeleteAcls (key 31), v0–3.
//
//   - Only with authorization on (Config.Authorizer.Enabled); off, they answer
//     SECURITY_DISABLED ("No Authorizer is configured"), as Kafka does without an authorizer.
//     A backend without the ACL ops answers SECURITY_DISABLED too.
//   - DescribeAcls needs DESCRIBE on the cluster, CreateAcls and DeleteAcls ALTER on the
//     cluster; otherwise CLUSTER_AUTHORIZATION_FAILED.
//   - The bindings live with the brokers (Backend.CreateAcls etc.; broker.ACLs has Kafka's
//     validation: INVALID_REQUEST for an ANY/UNKNOWN/MATCH value in a binding, a principal not
//     "Type:name", a CLUSTER not named kafka-cluster, UNKNOWN in a filter). v0 has no
//     pattern type: LITERAL.
//   - After a CreateAcls or DeleteAcls the gateway's cached ACLs are reloaded before the next
//     decision; other gateways see the change within their refresh interval.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

const securityDisabled = "No Authorizer is configured"

// aclGate answers the request-level error of an ACL API, or 0 to go on.
func aclGate(ctx context.Context, r *Request, need acl.Need) (int16, string) {
	if r.Server.authz == nil {
		return kerr.SecurityDisabled.Code, securityDisabled
	}
	if !r.authorizedCluster(ctx, need) {
		return kerr.ClusterAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Message
	}
	return 0, ""
}

// aclBackendCode maps a backend error of an ACL op.
func aclBackendCode(err error) int16 {
	if unsupported(err) {
		return kerr.SecurityDisabled.Code
	}
	return BackendErrorCode(err)
}

func filterToOp(v int16, typ kmsg.ACLResourceType, name *string, pat kmsg.ACLResourcePatternType, principal, host *string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) brokerop.AclFilter {
	if v == 0 {
		pat = kmsg.ACLResourcePatternTypeLiteral
	}
	f := brokerop.AclFilter{ResourceType: int8(typ), PatternType: int8(pat), Operation: int8(op), Permission: int8(perm)}
	if name != nil {
		f.HasResourceName, f.ResourceName = true, *name
	}
	if principal != nil {
		f.HasPrincipal, f.Principal = true, *principal
	}
	if host != nil {
		f.HasHost, f.Host = true, *host
	}
	return f
}

func handleDescribeAcls(ctx context.Context, r *Request, req *kmsg.DescribeACLsRequest, resp *kmsg.DescribeACLsResponse) {
	if code, msg := aclGate(ctx, r, acl.DescribeCluster); code != 0 {
		resp.ErrorCode, resp.ErrorMessage = code, kmsg.StringPtr(msg)
		return
	}
	f := filterToOp(req.Version, req.ResourceType, req.ResourceName, req.ResourcePatternType, req.Principal, req.Host, req.Operation, req.PermissionType)
	bresp, err := r.Server.Backend().DescribeAcls(ctx, &brokerop.DescribeAclsReq{Filter: f})
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = aclBackendCode(err), kmsg.StringPtr(err.Error())
		return
	}
	if bresp.ErrorCode != 0 {
		resp.ErrorCode, resp.ErrorMessage = bresp.ErrorCode, kmsg.StringPtr(bresp.ErrorMessage)
		return
	}
	type key struct {
		typ  int8
		name string
		pat  int8
	}
	index := map[key]int{}
	for _, b := range bresp.Bindings {
		k := key{b.ResourceType, b.ResourceName, b.PatternType}
		i, ok := index[k]
		if !ok {
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName, res.ResourcePatternType = kmsg.ACLResourceType(b.ResourceType), b.ResourceName, kmsg.ACLResourcePatternType(b.PatternType)
			i = len(resp.Resources)
			index[k] = i
			resp.Resources = append(resp.Resources, res)
		}
		a := kmsg.NewDescribeACLsResponseResourceACL()
		a.Principal, a.Host, a.Operation, a.PermissionType = b.Principal, b.Host, kmsg.ACLOperation(b.Operation), kmsg.ACLPermissionType(b.Permission)
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, a)
	}
}

func handleCreateAcls(ctx context.Context, r *Request, req *kmsg.CreateACLsRequest, resp *kmsg.CreateACLsResponse) {
	var bresp *brokerop.CreateAclsResp
	code, msg := aclChange(ctx, r, func() (err error) {
		var breq brokerop.CreateAclsReq
		for _, c := range req.Creations {
			pat := c.ResourcePatternType
			if req.Version == 0 {
				pat = kmsg.ACLResourcePatternTypeLiteral
			}
			breq.Creations = append(breq.Creations, brokerop.AclBinding{ResourceType: int8(c.ResourceType), ResourceName: c.ResourceName,
				PatternType: int8(pat), Principal: c.Principal, Host: c.Host, Operation: int8(c.Operation), Permission: int8(c.PermissionType)})
		}
		bresp, err = r.Server.Backend().CreateAcls(ctx, &breq)
		return err
	})
	for i := range req.Creations {
		res := kmsg.NewCreateACLsResponseResult()
		switch {
		case code != 0:
			res.ErrorCode, res.ErrorMessage = code, kmsg.StringPtr(msg)
		case i < len(bresp.Results):
			res.ErrorCode = bresp.Results[i].ErrorCode
			if m := bresp.Results[i].ErrorMessage; m != "" {
				res.ErrorMessage = kmsg.StringPtr(m)
			}
		default:
			res.ErrorCode = kerr.UnknownServerError.Code
		}
		resp.Results = append(resp.Results, res)
	}
}

func handleDeleteAcls(ctx context.Context, r *Request, req *kmsg.DeleteACLsRequest, resp *kmsg.DeleteACLsResponse) {
	var bresp *brokerop.DeleteAclsResp
	code, msg := aclChange(ctx, r, func() (err error) {
		var breq brokerop.DeleteAclsReq
		for _, f := range req.Filters {
			breq.Filters = append(breq.Filters, filterToOp(req.Version, f.ResourceType, f.ResourceName, f.ResourcePatternType, f.Principal, f.Host, f.Operation, f.PermissionType))
		}
		bresp, err = r.Server.Backend().DeleteAcls(ctx, &breq)
		return err
	})
	for i := range req.Filters {
		res := kmsg.NewDeleteACLsResponseResult()
		switch {
		case code != 0:
			res.ErrorCode, res.ErrorMessage = code, kmsg.StringPtr(msg)
		case i >= len(bresp.Results):
			res.ErrorCode = kerr.UnknownServerError.Code
		default:
			br := bresp.Results[i]
			res.ErrorCode = br.ErrorCode
			if br.ErrorMessage != "" {
				res.ErrorMessage = kmsg.StringPtr(br.ErrorMessage)
			}
			for _, b := range br.Deleted {
				m := kmsg.NewDeleteACLsResponseResultMatchingACL()
				m.ResourceType, m.ResourceName, m.ResourcePatternType = kmsg.ACLResourceType(b.ResourceType), b.ResourceName, kmsg.ACLResourcePatternType(b.PatternType)
				m.Principal, m.Host, m.Operation, m.PermissionType = b.Principal, b.Host, kmsg.ACLOperation(b.Operation), kmsg.ACLPermissionType(b.Permission)
				res.MatchingACLs = append(res.MatchingACLs, m)
			}
		}
		resp.Results = append(resp.Results, res)
	}
}

// aclChange runs an ACL write (call) for a principal with ALTER on the cluster, then drops the
// gateway's cached ACLs; a refusal or a failed call is returned as its code and message, for
// every entry of the request.
func aclChange(ctx context.Context, r *Request, call func() error) (int16, string) {
	if code, msg := aclGate(ctx, r, acl.AlterCluster); code != 0 {
		return code, msg
	}
	err := call()
	r.Server.authz.invalidate()
	if err != nil {
		return aclBackendCode(err), err.Error()
	}
	return 0, ""
}
