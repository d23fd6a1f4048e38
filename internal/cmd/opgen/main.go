// Command opgen generates the KafkaOp code from the declared Service interface of
// broker/brokerop, the way franz-go generates kmsg from its definitions: per struct a postcard
// encoder, decoder and size hint (and a by-reference encoder for structs that carry record
// sets), the op table, the request decoder and the dispatch switch, Unimplemented, and the
// mesh Caller's methods (broker/brokermesh).
//
// Input: the package's Go files. An op is a method of Service (or of an interface Service
// embeds) whose doc carries a directive line
//
//	//kafkaop:<name> <Code constant>
//
// and whose signature is (context.Context, *XReq) (*XResp, error); methods without the
// directive are local forms (ProduceStaged, FetchPooled) and get no wire code. A []byte field
// tagged `kafkaop:"records"` carries record sets: the by-reference encoder writes it as the
// caller's own slice (brokerop's vectored frames). A field tagged `kafkaop:"ext"` is left out
// of the generated codec: a frame header's extension, encoded by hand (brokerop's frame.go).
//
// Usage (from go generate):
//
//	opgen -src <brokerop dir> -ops <out.go>           the brokerop code
//	opgen -src <brokerop dir> -caller <out.go>        the brokermesh Caller methods
//
// The generated files are checked in; opgen's test regenerates them and fails when stale.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	src := flag.String("src", ".", "directory of package brokerop")
	ops := flag.String("ops", "", "write the brokerop code to this file")
	caller := flag.String("caller", "", "write the brokermesh Caller methods to this file")
	flag.Parse()
	def, err := Load(*src)
	if err != nil {
		fmt.Fprintln(os.Stderr, "opgen:", err)
		os.Exit(1)
	}
	for _, o := range []struct {
		path string
		gen  func(*Def) ([]byte, error)
	}{{*ops, GenOps}, {*caller, GenCaller}} {
		if o.path == "" {
			continue
		}
		b, err := o.gen(def)
		if err == nil {
			err = os.WriteFile(o.path, b, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "opgen:", err)
			os.Exit(1)
		}
	}
}
