package replmesh

import (
	"math"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// decodeMessage decodes one protobuf raftpb.Message. Its entries' Data and its Context alias
// b (no copy: the transport reads every frame into a buffer of its own, Config.RetainFrames,
// so the bytes stay as they are for as long as the message is referenced). The forms the
// Engine's messages take are decoded here: the scalar fields, entries and context; anything
// else (a snapshot, responses, an unknown field or enum value, a repeated message field
// seen twice where it merges, a field of another wire type, malformed input) goes to
// proto.Unmarshal, which copies and says what is wrong. Both give messages proto.Equal for
// the same bytes (FuzzDecodeMessage).
func decodeMessage(b []byte) (*raftpb.Message, error) {
	if m := decodeFast(b); m != nil {
		return m, nil
	}
	m := new(raftpb.Message)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, err
	}
	return m, nil
}

// msgBox holds a decoded Message and the values its optional scalar fields point to, in
// one allocation.
type msgBox struct {
	m                                                  raftpb.Message
	typ                                                raftpb.MessageType
	to, from, term, logTerm, index, commit, hint, vote uint64
	reject                                             bool
}

// entryBox is an Entry with its optional fields' values, in one allocation.
type entryBox struct {
	e           raftpb.Entry
	typ         raftpb.EntryType
	term, index uint64
}

// decodeFast decodes the common forms of a Message (see decodeMessage), or returns nil.
func decodeFast(b []byte) *raftpb.Message {
	x := new(msgBox)
	m := &x.m
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil
			}
			b = b[n:]
			switch num {
			case 1:
				if v > math.MaxInt32 {
					return nil
				}
				if _, ok := raftpb.MessageType_name[int32(v)]; !ok {
					return nil // a closed enum's unknown value: kept as an unknown field
				}
				x.typ, m.Type = raftpb.MessageType(v), &x.typ
			case 2:
				x.to, m.To = v, &x.to
			case 3:
				x.from, m.From = v, &x.from
			case 4:
				x.term, m.Term = v, &x.term
			case 5:
				x.logTerm, m.LogTerm = v, &x.logTerm
			case 6:
				x.index, m.Index = v, &x.index
			case 8:
				x.commit, m.Commit = v, &x.commit
			case 10:
				x.reject, m.Reject = v != 0, &x.reject
			case 11:
				x.hint, m.RejectHint = v, &x.hint
			case 13:
				x.vote, m.Vote = v, &x.vote
			default:
				return nil
			}
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil
			}
			b = b[n:]
			switch num {
			case 7:
				e := decodeEntry(v)
				if e == nil {
					return nil
				}
				m.Entries = append(m.Entries, e)
			case 12:
				m.Context = v[:len(v):len(v)]
			default:
				return nil
			}
		default:
			return nil
		}
	}
	return m
}

// decodeEntry decodes an Entry of the four known fields, its Data aliasing b, or returns nil.
func decodeEntry(b []byte) *raftpb.Entry {
	x := new(entryBox)
	e := &x.e
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && num >= 1 && num <= 3:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil
			}
			b = b[n:]
			switch num {
			case 1:
				if v > math.MaxInt32 {
					return nil
				}
				if _, ok := raftpb.EntryType_name[int32(v)]; !ok {
					return nil
				}
				x.typ, e.Type = raftpb.EntryType(v), &x.typ
			case 2:
				x.term, e.Term = v, &x.term
			case 3:
				x.index, e.Index = v, &x.index
			}
		case typ == protowire.BytesType && num == 4:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil
			}
			b = b[n:]
			e.Data = v[:len(v):len(v)]
		default:
			return nil
		}
	}
	return e
}
