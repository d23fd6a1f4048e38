package gateway

// ApiVersions (key 18), v0–4.
//
//   - Answered by the gateway itself from the registration table (no backend call).
//   - A version above 4 is answered by the server loop before this handler runs: v0 body,
//     UNSUPPORTED_VERSION and only the ApiVersions range (KIP-511, as Kafka and kfake do),
//     so the client asks again at v4 and learns the features too (kgo asks v5 first); the
//     response header is always v0.
//   - v3+ carries the client's software name and version; they are not checked.
//   - v3+ answers the feature transaction.version (KIP-584 features, KIP-890 part 2) as
//     supported 0–2 and finalized at the backend's TransactionVersion, only for a backend
//     that has one (the embedded broker of cmd/gateway: 2; see broker/txn's doc). Without it
//     no feature is listed and clients run transactions as version 1 (AddPartitionsToTxn
//     before producing). A client sees version 2 nowhere it is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/kafkawire"
)

func handleApiVersions(_ context.Context, r *Request) (kmsg.Response, error) {
	api, _ := lookupAPI(kafkawire.KeyApiVersions)
	resp := kafkawire.ApiVersionsResponse(r.Header.APIVersion,
		kafkawire.VersionRange{Key: api.Key, Min: api.MinVersion, Max: api.MaxVersion}, APIs())
	if tv := r.Server.transactionVersion(); tv > 0 && resp.ErrorCode == 0 && resp.Version >= 3 {
		sf := kmsg.NewApiVersionsResponseSupportedFeature()
		sf.Name, sf.MinVersion, sf.MaxVersion = txnVersionFeature, 0, 2
		ff := kmsg.NewApiVersionsResponseFinalizedFeature()
		ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = txnVersionFeature, tv, tv
		resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{sf}
		resp.FinalizedFeatures = []kmsg.ApiVersionsResponseFinalizedFeature{ff}
		resp.FinalizedFeaturesEpoch = 1 // the features never change while the server runs
	}
	return resp, nil
}

// txnVersionFeature is the KIP-584 feature naming the transaction protocol version.
const txnVersionFeature = "transaction.version"

// TransactionVersioner is a Backend that names the transaction.version it serves (broker.Broker:
// 2 on the single-broker path). A Backend without it serves version 1 semantics and the
// feature is not advertised.
type TransactionVersioner interface {
	TransactionVersion() int16
}

// transactionVersion is the backend's transaction.version (0: it names none).
func (s *Server) transactionVersion() int16 {
	if v, ok := s.cfg.Backend.(TransactionVersioner); ok {
		return v.TransactionVersion()
	}
	return 0
}

// txnV2 reports whether r's backend serves transaction.version 2 (KIP-890 part 2).
func (r *Request) txnV2() bool { return r.Server.transactionVersion() >= 2 }
