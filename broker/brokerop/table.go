package brokerop

// Spec describes one op: its code, a name for spans and logs, and constructors of its request
// and response structs. The table (Lookup, Specs) is generated from Service (ops_gen.go).
type Spec struct {
	Code    Code
	Name    string
	newReq  func() Message
	newResp func() Message
}

// NewRequest returns a pointer to a zero request struct of this op.
func (s Spec) NewRequest() any { return s.newReq() }

// NewResponse returns a pointer to a zero response struct of this op.
func (s Spec) NewResponse() any { return s.newResp() }

// Specs returns every op, in the order Service declares them.
func Specs() []Spec { return append([]Spec(nil), specs[:]...) }
