package gateway

// ApiVersions (key 18), v0–4.
//
//   - Answered by the gateway itself from the registration table (no backend call).
//   - A version above 4 is answered by the server loop before this handler runs: v0 body,
//     UNSUPPORTED_VERSION, the same table (KIP-511); the response header is always v0.
//   - v3+ carries the client's software name and version; they are not checked.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/kafkawire"
)

func handleApiVersions(_ context.Context, r *Request) (kmsg.Response, error) {
	api, _ := lookupAPI(kafkawire.KeyApiVersions)
	return kafkawire.ApiVersionsResponse(r.Header.APIVersion,
		kafkawire.VersionRange{Key: api.Key, Min: api.MinVersion, Max: api.MaxVersion}, APIs()), nil
}
