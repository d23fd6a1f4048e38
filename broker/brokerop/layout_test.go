package brokerop

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite LAYOUT.md")

func wireType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "bool (1 byte)"
	case reflect.Uint8:
		return "u8 (1 byte)"
	case reflect.Int8:
		return "i8 (1 byte)"
	case reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("u%d varint", t.Bits())
	case reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("i%d zigzag varint", t.Bits())
	case reflect.Float64:
		return "f64 LE"
	case reflect.String:
		return "string (varint len + UTF-8)"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes (varint len + bytes)"
		}
		return "seq<" + shortName(t.Elem()) + "> (varint count + items)"
	case reflect.Array:
		return fmt.Sprintf("[%s; %d] (no length)", shortName(t.Elem()), t.Len())
	case reflect.Map:
		return fmt.Sprintf("map<%s, %s> (varint count + pairs, keys ascending)", shortName(t.Key()), shortName(t.Elem()))
	case reflect.Pointer:
		return "option<" + shortName(t.Elem()) + ">"
	case reflect.Struct:
		return t.Name()
	}
	return t.String()
}

func shortName(t reflect.Type) string {
	if t.Kind() == reflect.Struct {
		return t.Name()
	}
	return strings.SplitN(wireType(t), " ", 2)[0]
}

func collect(t reflect.Type, seen map[string]reflect.Type) {
	switch t.Kind() {
	case reflect.Struct:
		if _, ok := seen[t.Name()]; ok {
			return
		}
		seen[t.Name()] = t
		for i := 0; i < t.NumField(); i++ {
			collect(t.Field(i).Type, seen)
		}
	case reflect.Slice, reflect.Array, reflect.Pointer:
		collect(t.Elem(), seen)
	case reflect.Map:
		collect(t.Key(), seen)
		collect(t.Elem(), seen)
	}
}

func reqType(s Spec) reflect.Type  { return reflect.TypeOf(s.NewRequest()).Elem() }
func respType(s Spec) reflect.Type { return reflect.TypeOf(s.NewResponse()).Elem() }

func renderLayout() string {
	var b strings.Builder
	b.WriteString("# KafkaOp wire layout\n\n")
	b.WriteString("Generated from the Go structs by `go test ./broker/brokerop -run TestLayoutDoc -update`;\n")
	b.WriteString("the test fails when this file is stale. Encoding rules: see codec.go (postcard).\n\n")
	b.WriteString("Frame: `tag u8 | length uvarint | payload`. Request payload: `RequestHeader` then the\n")
	b.WriteString("op's request struct. Response payload: `ResponseHeader`, then (Status 0 only) the op's\n")
	b.WriteString("response struct. Structs are their fields in order, nothing else.\n\n")
	b.WriteString("A request frame's tag is the op code, with bit 0x80 (FlagPrincipal) set when the\n")
	b.WriteString("RequestHeader carries its extension (Principal, ClientHost: the Kafka principal a\n")
	b.WriteString("gateway acts for); without the bit the header ends after TraceState, as before the\n")
	b.WriteString("extension existed. Response tags are the op code.\n\n")
	specs := Specs()
	sort.Slice(specs, func(i, j int) bool { return specs[i].Code < specs[j].Code })
	b.WriteString("| tag | op | request | response |\n|---|---|---|---|\n")
	for _, s := range specs {
		fmt.Fprintf(&b, "| 0x%02X | %s | %s | %s |\n", uint8(s.Code), s.Name, reqType(s).Name(), respType(s).Name())
	}
	seen := map[string]reflect.Type{}
	collect(reflect.TypeFor[RequestHeader](), seen)
	collect(reflect.TypeFor[ResponseHeader](), seen)
	for _, s := range specs {
		collect(reqType(s), seen)
		collect(respType(s), seen)
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	b.WriteString("\n## Structs\n")
	for _, n := range names {
		t := seen[n]
		fmt.Fprintf(&b, "\n### %s\n\n", n)
		if t.NumField() == 0 {
			b.WriteString("(no fields: encodes to zero bytes)\n")
			continue
		}
		b.WriteString("| # | field | encoding |\n|---|---|---|\n")
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			enc := wireType(f.Type)
			if f.Tag.Get("kafkaop") == "ext" {
				enc += "; extension: " + map[string]string{
					"RequestHeader":  "present only when the tag has FlagPrincipal (0x80)",
					"ResponseHeader": "present only for Status 3 (unauthorized) and a non-zero code",
				}[t.Name()]
			}
			fmt.Fprintf(&b, "| %d | %s | %s |\n", i, f.Name, enc)
		}
	}
	b.WriteString("\n## Byte examples\n\n")
	ex := []struct {
		what string
		code Code
		h    RequestHeader
		body any
	}{
		{"Fetch, request id 1, 500 ms budget, one partition", OpFetch, RequestHeader{RequestID: 1, DeadlineMs: 500},
			&FetchReq{MaxWaitMs: 500, MinBytes: 1, MaxBytes: 1 << 20, Partitions: []FetchPartition{{Topic: "t", Partition: 0, Offset: 5, MaxBytes: 1 << 20}}}},
		{"Produce acks=all of 3 opaque batch bytes", OpProduce, RequestHeader{RequestID: 2},
			&ProduceReq{Acks: -1, TimeoutMs: 30000, Partitions: []ProducePartition{{Topic: "t", Partition: 1, Records: []byte{0xaa, 0xbb, 0xcc}}}}},
		{"The same Produce for User:bob from 10.0.0.7 (tag 0x82: FlagPrincipal | produce)", OpProduce,
			RequestHeader{RequestID: 2, Principal: "User:bob", ClientHost: "10.0.0.7"},
			&ProduceReq{Acks: -1, TimeoutMs: 30000, Partitions: []ProducePartition{{Topic: "t", Partition: 1, Records: []byte{0xaa, 0xbb, 0xcc}}}}},
	}
	for _, e := range ex {
		frame, err := EncodeRequest(e.code, e.h, e.body)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(&b, "%s:\n\n    %s\n\n", e.what, hex.EncodeToString(frame))
	}
	return b.String()
}

func TestLayoutDoc(t *testing.T) {
	want := renderLayout()
	if *update {
		if err := os.WriteFile("LAYOUT.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("LAYOUT.md")
	if err != nil || string(got) != want {
		t.Fatalf("LAYOUT.md is stale; run: go test ./broker/brokerop -run TestLayoutDoc -update")
	}
}
