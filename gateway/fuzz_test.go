package gateway

import (
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/gateway/gatewaytest"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// FuzzHandle runs arbitrary request frames through the server's dispatch (decode, handler,
// finish, encode) against the in-memory backend. Invariants: no panic; a frame is either
// refused with an error (the connection would close) or answered with a response of the
// request's key that encodes and decodes back at the request's version.
func FuzzHandle(f *testing.F) {
	mem := gatewaytest.NewMem(2)
	s, err := NewServer(Config{Backend: mem, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	enc := func(req kmsg.Request) []byte {
		return kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz")).AppendRequest(nil, req, 7)[4:]
	}
	for _, a := range APIs() {
		for _, v := range []int16{a.Min, a.Max} {
			req := kmsg.RequestForKey(a.Key)
			req.SetVersion(v)
			f.Add(enc(req))
		}
	}
	p := kmsg.NewPtrProduceRequest()
	p.SetVersion(9)
	p.Acks = 1
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = make([]byte, 70)
	pp.Records[16] = 2
	pt.Partitions = append(pt.Partitions, pp, pp)
	p.Topics = append(p.Topics, pt)
	f.Add(enc(p))
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	md.AllowAutoTopicCreation = true
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("t")
	md.Topics = append(md.Topics, mt)
	f.Add(enc(md))
	fe := kmsg.NewPtrFetchRequest()
	fe.SetVersion(13)
	ft := kmsg.NewFetchRequestTopic()
	ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
	fe.Topics = append(fe.Topics, ft)
	f.Add(enc(fe))

	f.Fuzz(func(t *testing.T, frame []byte) {
		h, _, herr := kafkawire.ParseHeader(frame)
		if herr == nil && h.APIKey == kafkawire.KeyFetch {
			// Keep long polls short: the in-memory backend honours max_wait_ms.
			if _, req, err := kafkawire.DecodeRequest(frame); err == nil {
				if fr, ok := req.(*kmsg.FetchRequest); ok && fr.MaxWaitMillis > 10 {
					return
				}
			}
		}
		p, err := s.handle(frame)
		if err != nil {
			return
		}
		resp := p.resp
		if p.finish != nil {
			if resp, err = p.finish(); err != nil || resp == nil {
				return
			}
			resp.SetVersion(p.version)
		}
		if resp == nil {
			return
		}
		out := kafkawire.AppendResponse(nil, p.corr, resp)
		back := kmsg.ResponseForKey(resp.Key())
		back.SetVersion(resp.GetVersion())
		body := out[8:]
		if back.IsFlexible() && back.Key() != kafkawire.KeyApiVersions {
			body = body[1:]
		}
		if err := back.ReadFrom(body); err != nil {
			t.Fatalf("key %d v%d: answer does not decode: %v", resp.Key(), resp.GetVersion(), err)
		}
	})
}
