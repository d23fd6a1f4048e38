package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Kind is the shape of a field type.
type Kind int

// Kinds.
const (
	Basic   Kind = iota // bool, ints, string (Name is the Go type, Under the basic type)
	Struct              // a struct of the package
	Bytes               // []byte
	Slice               // []Elem
	Array               // [Len]byte
	Map                 // map[Key]Elem
	Pointer             // *Elem, postcard's option
)

// Type is a field type.
type Type struct {
	Kind      Kind
	Name      string // Go spelling of Basic and Struct types
	Under     string // Basic: the underlying basic type
	Elem, Key *Type
	Len       int
}

// GoString spells the type in Go.
func (t *Type) GoString() string {
	switch t.Kind {
	case Bytes:
		return "[]byte"
	case Slice:
		return "[]" + t.Elem.GoString()
	case Array:
		return fmt.Sprintf("[%d]%s", t.Len, t.Elem.GoString())
	case Map:
		return "map[" + t.Key.GoString() + "]" + t.Elem.GoString()
	case Pointer:
		return "*" + t.Elem.GoString()
	}
	return t.Name
}

// Field is one struct field.
type Field struct {
	Name    string
	T       *Type
	Records bool // tagged kafkaop:"records": a record set, sent by reference
}

// StructDef is one struct of the package.
type StructDef struct {
	Name   string
	Fields []Field
}

// Op is one KafkaOp: a Service method with a //kafkaop: directive.
type Op struct {
	Method string // Go method name
	Name   string // op name in spans and LAYOUT.md
	Code   string // the Code constant
	Req    string // request struct
	Resp   string // response struct
	Iface  string // the interface declaring it
	Doc    string // the method's doc, directive removed
}

// Def is what opgen generates from.
type Def struct {
	Package string
	Structs map[string]*StructDef
	Ops     []Op
	Local   []string // methods of Service without an op (local forms)
}

var basics = map[string]bool{"bool": true, "uint8": true, "byte": true, "int8": true, "uint16": true, "uint32": true,
	"uint64": true, "int16": true, "int32": true, "int64": true, "string": true}

// Load parses the Go files of dir (tests and generated files aside).
func Load(dir string) (*Def, error) {
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	def := &Def{Structs: map[string]*StructDef{}}
	named := map[string]string{}            // named basic types: name -> underlying
	structs := map[string]*ast.StructType{} // by name
	ifaces := map[string]*ast.InterfaceType{}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") || strings.HasSuffix(n, "_gen.go") {
			continue
		}
		src, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, n, src, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		def.Package = f.Name.Name
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				ts := s.(*ast.TypeSpec)
				switch t := ts.Type.(type) {
				case *ast.StructType:
					structs[ts.Name.Name] = t
				case *ast.InterfaceType:
					ifaces[ts.Name.Name] = t
				case *ast.Ident:
					if basics[t.Name] {
						named[ts.Name.Name] = t.Name
					}
				}
			}
		}
	}
	var typeOf func(e ast.Expr) (*Type, error)
	typeOf = func(e ast.Expr) (*Type, error) {
		switch e := e.(type) {
		case *ast.Ident:
			if basics[e.Name] {
				u := e.Name
				if u == "byte" {
					u = "uint8"
				}
				return &Type{Kind: Basic, Name: e.Name, Under: u}, nil
			}
			if u, ok := named[e.Name]; ok {
				return &Type{Kind: Basic, Name: e.Name, Under: u}, nil
			}
			if _, ok := structs[e.Name]; ok {
				return &Type{Kind: Struct, Name: e.Name}, nil
			}
		case *ast.StarExpr:
			el, err := typeOf(e.X)
			if err != nil {
				return nil, err
			}
			return &Type{Kind: Pointer, Elem: el}, nil
		case *ast.ArrayType:
			el, err := typeOf(e.Elt)
			if err != nil {
				return nil, err
			}
			if e.Len == nil {
				if el.Kind == Basic && (el.Name == "byte" || el.Name == "uint8") {
					return &Type{Kind: Bytes}, nil
				}
				return &Type{Kind: Slice, Elem: el}, nil
			}
			lit, ok := e.Len.(*ast.BasicLit)
			if !ok || el.Kind != Basic || el.Under != "uint8" {
				return nil, fmt.Errorf("only [N]byte arrays with a literal N are supported")
			}
			n, err := strconv.Atoi(lit.Value)
			if err != nil {
				return nil, err
			}
			return &Type{Kind: Array, Elem: el, Len: n}, nil
		case *ast.MapType:
			k, err := typeOf(e.Key)
			if err != nil {
				return nil, err
			}
			if k.Kind != Basic || k.Under != "string" {
				return nil, fmt.Errorf("only string map keys are supported")
			}
			v, err := typeOf(e.Value)
			if err != nil {
				return nil, err
			}
			return &Type{Kind: Map, Key: k, Elem: v}, nil
		}
		return nil, fmt.Errorf("type %T %v has no postcard mapping", e, e)
	}
	// The structs reachable from the ops and the frame headers.
	var visit func(name string) error
	visit = func(name string) error {
		if _, done := def.Structs[name]; done {
			return nil
		}
		st, ok := structs[name]
		if !ok {
			return fmt.Errorf("struct %s not found", name)
		}
		sd := &StructDef{Name: name}
		def.Structs[name] = sd
		for _, f := range st.Fields.List {
			t, err := typeOf(f.Type)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			rec := false
			if f.Tag != nil {
				tag, _ := strconv.Unquote(f.Tag.Value)
				if reflect.StructTag(tag).Get("kafkaop") == "ext" {
					continue // a header extension, encoded by hand (brokerop frame.go)
				}
				rec = reflect.StructTag(tag).Get("kafkaop") == "records"
				if rec && t.Kind != Bytes {
					return fmt.Errorf("%s: a records field must be []byte", name)
				}
			}
			if len(f.Names) == 0 {
				return fmt.Errorf("%s: embedded fields are not supported", name)
			}
			for _, n := range f.Names {
				if !n.IsExported() {
					return fmt.Errorf("%s.%s: unexported fields are not supported", name, n.Name)
				}
				sd.Fields = append(sd.Fields, Field{Name: n.Name, T: t, Records: rec})
			}
			for u := t; u != nil; u = u.Elem {
				if u.Kind == Struct {
					if err := visit(u.Name); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	for _, h := range []string{"RequestHeader", "ResponseHeader"} {
		if err := visit(h); err != nil {
			return nil, err
		}
	}
	svc, ok := ifaces["Service"]
	if !ok {
		return nil, fmt.Errorf("no Service interface in %s", dir)
	}
	var walk func(iname string, it *ast.InterfaceType) error
	walk = func(iname string, it *ast.InterfaceType) error {
		for _, m := range it.Methods.List {
			if len(m.Names) == 0 { // embedded interface
				id, ok := m.Type.(*ast.Ident)
				if !ok || ifaces[id.Name] == nil {
					return fmt.Errorf("%s embeds an unknown interface", iname)
				}
				if err := walk(id.Name, ifaces[id.Name]); err != nil {
					return err
				}
				continue
			}
			op, ok, err := opOf(iname, m)
			if err != nil {
				return err
			}
			if !ok {
				def.Local = append(def.Local, m.Names[0].Name)
				continue
			}
			for _, s := range []string{op.Req, op.Resp} {
				if err := visit(s); err != nil {
					return err
				}
			}
			def.Ops = append(def.Ops, op)
		}
		return nil
	}
	if err := walk("Service", svc); err != nil {
		return nil, err
	}
	seen := map[string]string{}
	for _, o := range def.Ops {
		for _, k := range []string{"code " + o.Code, "name " + o.Name} {
			if m, dup := seen[k]; dup {
				return nil, fmt.Errorf("ops %s and %s share %s", m, o.Method, k)
			}
			seen[k] = o.Method
		}
	}
	return def, nil
}

// opOf reads an op from a method's directive and signature.
func opOf(iname string, m *ast.Field) (Op, bool, error) {
	op := Op{Method: m.Names[0].Name, Iface: iname}
	if m.Doc == nil {
		return op, false, nil
	}
	var doc []string
	found := false
	for _, c := range m.Doc.List {
		if rest, ok := strings.CutPrefix(c.Text, "//kafkaop:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 {
				return op, false, fmt.Errorf("%s: want //kafkaop:<name> <Code>", op.Method)
			}
			op.Name, op.Code, found = f[0], f[1], true
			continue
		}
		doc = append(doc, c.Text)
	}
	if !found {
		return op, false, nil
	}
	op.Doc = strings.Join(doc, "\n")
	ft := m.Type.(*ast.FuncType)
	bad := fmt.Errorf("%s: an op's signature is (context.Context, *XReq) (*XResp, error)", op.Method)
	if ft.Params == nil || len(ft.Params.List) != 2 || ft.Results == nil || len(ft.Results.List) != 2 {
		return op, false, bad
	}
	req, ok1 := ft.Params.List[1].Type.(*ast.StarExpr)
	resp, ok2 := ft.Results.List[0].Type.(*ast.StarExpr)
	if !ok1 || !ok2 {
		return op, false, bad
	}
	ri, ok1 := req.X.(*ast.Ident)
	si, ok2 := resp.X.(*ast.Ident)
	if !ok1 || !ok2 {
		return op, false, bad
	}
	op.Req, op.Resp = ri.Name, si.Name
	return op, true, nil
}

// hasRecords reports whether struct name carries a records field, at any depth.
func (d *Def) hasRecords(name string) bool {
	for _, f := range d.Structs[name].Fields {
		if f.Records {
			return true
		}
		for u := f.T; u != nil; u = u.Elem {
			if u.Kind == Struct && d.hasRecords(u.Name) {
				return true
			}
		}
	}
	return false
}
