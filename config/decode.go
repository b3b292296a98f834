package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/vakt/vakt/drivers"
)

// The decoder turns goccy/go-yaml's syntax tree into a Config by walking the Go types
// and their yaml tags. It is ours rather than yaml.Unmarshal because the library stops
// at the first problem, and a technician wants to see every problem, each with its key
// path and line, in one check-config run.

const (
	// maxDepth bounds recursion through aliases and merge keys (a self-referencing
	// merge would otherwise never end).
	maxDepth = 64
	// maxNodes bounds the work a file can cause through aliases that expand to
	// aliases ("billion laughs"); real configurations need a few thousand.
	maxNodes = 1_000_000
)

var (
	durationType = reflect.TypeFor[Duration]()
	stdDuration  = reflect.TypeFor[time.Duration]()
	secretType   = reflect.TypeFor[Secret]()
)

type decoder struct {
	file string
	errs Errors
	// lines maps a key path to the line of its key (or list entry).
	lines map[string]int
	// given holds the key paths that had a non-null value, so that defaults apply
	// only to keys left out, and "baud: 0" is reported rather than silently replaced.
	given map[string]bool
	// anchors lists every &anchor by name, in file order, for resolving *aliases.
	anchors map[string][]*ast.AnchorNode
	// bad holds the key paths already reported, so validation does not pile a
	// second error ("required") on a value that failed to decode.
	bad     map[string]bool
	nodes   int
	tooBig  bool
	secrets secretResolver
}

func newDecoder(file string, secrets secretResolver) *decoder {
	return &decoder{
		file:    file,
		lines:   map[string]int{},
		given:   map[string]bool{},
		anchors: map[string][]*ast.AnchorNode{},
		bad:     map[string]bool{},
		secrets: secrets,
	}
}

func (d *decoder) errorf(path string, line int, format string, args ...any) {
	d.bad[path] = true
	d.errs = append(d.errs, &Error{File: d.file, Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// lineOf returns the line of path, or of its nearest ancestor that has one.
func (d *decoder) lineOf(path string) int {
	for path != "" {
		if l, ok := d.lines[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

func (d *decoder) isGiven(path string) bool { return d.given[path] }

// reported tells whether path, or a key above it, already has a decoding error.
func (d *decoder) reported(path string) bool {
	for ; path != ""; path = parentPath(path) {
		if d.bad[path] {
			return true
		}
	}
	return false
}

// parentPath strips the last element of a key path: "a.b[2]" → "a.b" → "a" → "".
func parentPath(path string) string {
	if strings.HasSuffix(path, "\"]") {
		if i := strings.LastIndex(path, "[\""); i >= 0 {
			return path[:i]
		}
	}
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func lineOfNode(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

func offsetOfNode(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Offset
	}
	return 0
}

// collectAnchors records every anchor in the tree, so an alias can be resolved even
// when its anchor sits under a key the decoder does not visit (an unknown key).
func (d *decoder) collectAnchors(n ast.Node, depth int) {
	if n == nil || depth > 10_000 {
		return
	}
	switch x := n.(type) {
	case *ast.DocumentNode:
		d.collectAnchors(x.Body, depth+1)
	case *ast.MappingNode:
		for _, mv := range x.Values {
			d.collectAnchors(mv, depth+1)
		}
	case *ast.MappingValueNode:
		d.collectAnchors(x.Key, depth+1)
		d.collectAnchors(x.Value, depth+1)
	case *ast.MappingKeyNode:
		d.collectAnchors(x.Value, depth+1)
	case *ast.SequenceNode:
		for _, v := range x.Values {
			d.collectAnchors(v, depth+1)
		}
	case *ast.TagNode:
		d.collectAnchors(x.Value, depth+1)
	case *ast.AnchorNode:
		if x.Name != nil {
			name := x.Name.GetToken().Value
			d.anchors[name] = append(d.anchors[name], x)
		}
		d.collectAnchors(x.Value, depth+1)
	}
}

// resolve follows anchors, aliases and the standard tags to the node that holds the
// value. It returns ok=false after reporting a problem. A nil node means null.
func (d *decoder) resolve(path string, n ast.Node) (ast.Node, bool) {
	for range maxDepth {
		switch x := n.(type) {
		case nil:
			return nil, true
		case *ast.NullNode:
			return nil, true
		case *ast.AnchorNode:
			n = x.Value
		case *ast.AliasNode:
			name := ""
			if x.Value != nil && x.Value.GetToken() != nil {
				name = x.Value.GetToken().Value
			}
			var target *ast.AnchorNode
			for _, a := range d.anchors[name] {
				if offsetOfNode(a) < offsetOfNode(x) {
					target = a // the latest definition before the alias wins
				}
			}
			if target == nil {
				d.errorf(path, lineOfNode(x), "alias *%s has no anchor &%s before it", name, name)
				return nil, false
			}
			n = target.Value
		case *ast.TagNode:
			tag := ""
			if x.Start != nil {
				tag = x.Start.Value
			}
			switch tag {
			case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!map", "!!seq",
				"tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
				"tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:map",
				"tag:yaml.org,2002:seq":
				n = x.Value
			default:
				d.errorf(path, lineOfNode(x), "YAML tag %s is not supported here", quoteShort(tag))
				return nil, false
			}
		default:
			return n, true
		}
	}
	d.errorf(path, lineOfNode(n), "too many nested aliases or tags")
	return nil, false
}

// spend counts decoded nodes and reports once when a file expands beyond reason.
func (d *decoder) spend(path string, n ast.Node) bool {
	d.nodes++
	if d.nodes <= maxNodes {
		return true
	}
	if !d.tooBig {
		d.tooBig = true
		d.errorf(path, lineOfNode(n), "the file expands to more than %d values (aliases inside aliases?); simplify it", maxNodes)
	}
	return false
}

// decode stores the YAML node n into v, the Go value at key path.
func (d *decoder) decode(path string, n ast.Node, v reflect.Value, depth int) {
	if !d.spend(path, n) {
		return
	}
	if depth > maxDepth {
		d.errorf(path, lineOfNode(n), "nested too deeply")
		return
	}
	n, ok := d.resolve(path, n)
	if !ok {
		return
	}
	if _, seen := d.lines[path]; !seen && n != nil {
		d.lines[path] = lineOfNode(n)
	}
	if n == nil { // null or empty: the zero value
		v.SetZero()
		return
	}
	d.given[path] = true

	switch v.Type() {
	case durationType, stdDuration:
		d.decodeDuration(path, n, v)
		return
	case secretType:
		d.decodeSecret(path, n, v)
		return
	}

	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(path, n, v, depth)
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.decode(path, n, elem.Elem(), depth+1)
		v.Set(elem)
	case reflect.Slice:
		d.decodeSlice(path, n, v, depth)
	case reflect.Map:
		d.decodeMap(path, n, v, depth)
	case reflect.String:
		if s, ok := scalarText(n); ok {
			v.SetString(s)
		} else {
			d.mismatch(path, n, "a string")
		}
	case reflect.Int:
		d.decodeInt(path, n, v)
	case reflect.Float64:
		d.decodeFloat(path, n, v)
	case reflect.Bool:
		if b, ok := n.(*ast.BoolNode); ok {
			v.SetBool(b.Value)
		} else {
			d.mismatch(path, n, "true or false")
		}
	default:
		// Only reachable if types.go gains a field of a kind this decoder lacks.
		d.errorf(path, lineOfNode(n), "internal error: cannot decode into %s", v.Type())
	}
}

func (d *decoder) mismatch(path string, n ast.Node, want string) {
	d.errorf(path, lineOfNode(n), "want %s, got %s", want, describe(n))
}

// describe names what a node holds for an error message. Only used for fields that are
// not secrets: secret fields never show their text.
func describe(n ast.Node) string {
	switch x := n.(type) {
	case *ast.MappingNode:
		return "a mapping (key: value lines)"
	case *ast.SequenceNode:
		return "a list"
	case *ast.BoolNode:
		return strconv.FormatBool(x.Value)
	}
	if s, ok := scalarText(n); ok {
		return quoteShort(s)
	}
	return "a " + kindName(n)
}

// kindName names a node's kind in the words docs/configuration.md uses.
func kindName(n ast.Node) string {
	switch n.Type() {
	case ast.SequenceType:
		return "list"
	case ast.MappingType:
		return "mapping"
	}
	return n.Type().YAMLName()
}

// quoteShort quotes s for an error message, shortened so one line stays one line.
func quoteShort(s string) string { return drivers.Quote(s) }

// scalarText is the text of a scalar as written: `room: 0101` stays "0101", not 65.
func scalarText(n ast.Node) (string, bool) {
	switch x := n.(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.LiteralNode:
		if x.Value == nil {
			return "", true
		}
		return x.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		if tk := n.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

func (d *decoder) decodeInt(path string, n ast.Node, v reflect.Value) {
	x, ok := n.(*ast.IntegerNode)
	if !ok {
		d.mismatch(path, n, "a whole number")
		return
	}
	switch i := x.Value.(type) {
	case int64:
		v.SetInt(i)
	case uint64:
		if i > math.MaxInt64 {
			d.errorf(path, lineOfNode(n), "%s is too large", quoteShort(x.Token.Value))
			return
		}
		v.SetInt(int64(i))
	default:
		d.mismatch(path, n, "a whole number")
	}
}

func (d *decoder) decodeFloat(path string, n ast.Node, v reflect.Value) {
	switch x := n.(type) {
	case *ast.IntegerNode:
		switch i := x.Value.(type) {
		case int64:
			v.SetFloat(float64(i))
			return
		case uint64:
			v.SetFloat(float64(i))
			return
		}
	case *ast.FloatNode:
		if !math.IsInf(x.Value, 0) && !math.IsNaN(x.Value) {
			v.SetFloat(x.Value)
			return
		}
	}
	d.mismatch(path, n, "a number")
}

func (d *decoder) decodeDuration(path string, n ast.Node, v reflect.Value) {
	if x, ok := n.(*ast.IntegerNode); ok {
		switch i := x.Value.(type) {
		case int64, uint64:
			if i == int64(0) || i == uint64(0) {
				v.SetInt(0)
				return
			}
		}
		d.errorf(path, lineOfNode(n), "%s has no unit; write e.g. \"%ss\" or \"%sm\"", x.Token.Value, x.Token.Value, x.Token.Value)
		return
	}
	s, ok := scalarText(n)
	if !ok {
		d.mismatch(path, n, `a duration such as "30s", "2m" or "1h30m"`)
		return
	}
	var dur Duration
	if err := dur.UnmarshalText([]byte(s)); err != nil {
		d.errorf(path, lineOfNode(n), "%v", err)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) decodeSecret(path string, n ast.Node, v reflect.Value) {
	s, ok := scalarText(n)
	if !ok {
		// describe() is not used: it would print the text.
		d.errorf(path, lineOfNode(n), "want a string (a literal, ${ENV_NAME} or file:/path), got a %s", kindName(n))
		return
	}
	sec, err := d.secrets.resolve(s)
	if err != nil {
		d.errorf(path, lineOfNode(n), "%v", err)
		return
	}
	v.Set(reflect.ValueOf(sec))
}

// entry is one key: value of a mapping, after merge keys (<<) are expanded.
type entry struct {
	key   string
	line  int
	value ast.Node
}

// entries lists a mapping's keys in file order. Keys given twice are reported; keys
// brought in by "<<: *anchor" are overridden by keys written in the mapping itself.
func (d *decoder) entries(path string, m *ast.MappingNode, depth int) []entry {
	if depth > maxDepth {
		d.errorf(path, lineOfNode(m), "merge keys (<<) nested too deeply")
		return nil
	}
	var out []entry
	explicit := map[string]int{} // key → line
	for _, mv := range m.Values {
		if mv == nil || mv.Key == nil {
			continue
		}
		if mv.Key.IsMergeKey() {
			continue
		}
		key, ok := keyText(mv.Key)
		line := lineOfNode(mv.Key)
		if !ok {
			d.errorf(path, line, "a key must be a plain name, not %s", describeKey(mv.Key))
			continue
		}
		if first, dup := explicit[key]; dup {
			d.errorf(drivers.Key(path, key), line, "given twice (first on line %d); keep one", first)
			continue
		}
		explicit[key] = line
	}
	merged := map[string]bool{}
	seenExplicit := map[string]bool{}
	for _, mv := range m.Values {
		if mv == nil || mv.Key == nil {
			continue
		}
		if mv.Key.IsMergeKey() {
			for _, e := range d.mergeEntries(path, mv.Value, depth+1) {
				if _, ok := explicit[e.key]; ok || merged[e.key] {
					continue // YAML: own keys win, then earlier merges
				}
				merged[e.key] = true
				out = append(out, e)
			}
			continue
		}
		key, ok := keyText(mv.Key)
		if !ok || seenExplicit[key] {
			continue
		}
		seenExplicit[key] = true
		out = append(out, entry{key: key, line: lineOfNode(mv.Key), value: mv.Value})
	}
	return out
}

// mergeEntries expands the value of a "<<" key: a mapping, an alias of one, or a list
// of those.
func (d *decoder) mergeEntries(path string, n ast.Node, depth int) []entry {
	if !d.spend(path, n) {
		return nil
	}
	n, ok := d.resolve(path, n)
	if !ok || n == nil {
		return nil
	}
	switch x := n.(type) {
	case *ast.MappingNode:
		return d.entries(path, x, depth+1)
	case *ast.SequenceNode:
		var out []entry
		seen := map[string]bool{}
		for _, item := range x.Values {
			for _, e := range d.mergeEntries(path, item, depth+1) {
				if !seen[e.key] {
					seen[e.key] = true
					out = append(out, e)
				}
			}
		}
		return out
	}
	d.errorf(path, lineOfNode(n), "<< must name a mapping (<<: *anchor), got %s", describe(n))
	return nil
}

func keyText(k ast.MapKeyNode) (string, bool) {
	var n ast.Node = k
	if mk, ok := k.(*ast.MappingKeyNode); ok { // "? key" form
		n = mk.Value
	}
	switch n.(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode:
		if x, ok := n.(*ast.StringNode); ok {
			return x.Value, true
		}
		if tk := n.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

func describeKey(k ast.MapKeyNode) string {
	if k == nil {
		return "nothing"
	}
	return "a " + k.Type().YAMLName()
}

func (d *decoder) asMapping(path string, n ast.Node, what string) (*ast.MappingNode, bool) {
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.mismatch(path, n, what)
	}
	return m, ok
}

func (d *decoder) decodeStruct(path string, n ast.Node, v reflect.Value, depth int) {
	m, ok := d.asMapping(path, n, "a mapping (key: value lines)")
	if !ok {
		return
	}
	fields, names, optField := structFields(v.Type())
	ents := d.entries(path, m, depth)

	// A field tagged ",driver" takes the keys the struct does not know, decoded into
	// the options of the driver that the sibling "driver" key names.
	var (
		opts       reflect.Value // the driver's options struct, when it has one
		optFields  map[string]int
		driverName string
		knownName  bool
	)
	if optField >= 0 {
		for _, e := range ents {
			if x, ok := e.value.(*ast.StringNode); ok && e.key == "driver" {
				driverName = x.Value
			}
		}
		if f, ok := drivers.Lookup(driverName); ok {
			knownName = true
			if o := f(drivers.Settings{}).Options(); o != nil {
				ptr := reflect.ValueOf(o)
				opts = ptr.Elem()
				var optNames []string
				optFields, optNames, _ = structFields(opts.Type())
				names = append(slices.Clone(names), optNames...)
				v.Field(optField).Set(ptr)
			}
		}
	}
	for _, e := range ents {
		p := drivers.Key(path, e.key)
		if i, ok := fields[e.key]; ok {
			d.lines[p] = e.line
			d.decode(p, e.value, v.Field(i), depth+1)
			continue
		}
		if i, ok := optFields[e.key]; ok {
			d.lines[p] = e.line
			d.decode(p, e.value, opts.Field(i), depth+1)
			continue
		}
		if optField >= 0 {
			if owner := optionOwner(e.key); owner != "" {
				if knownName {
					d.errorf(p, e.line, "%s is for driver %s; driver %s does not use it", e.key, owner, driverName)
				}
				// An unknown driver has its own error; its keys are not judged.
				continue
			}
		}
		d.errorf(p, e.line, "unknown key%s", suggest(e.key, names))
	}
}

// structFields maps a struct's yaml names to field indexes, and finds the field
// tagged ",driver" (-1 when there is none).
func structFields(t reflect.Type) (fields map[string]int, names []string, driverField int) {
	fields, driverField = map[string]int{}, -1
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("yaml")
		name, opt, _ := strings.Cut(tag, ",")
		if name == "" && opt == "driver" {
			driverField = i
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	return fields, names, driverField
}

// optionOwner names the first registered driver whose options have key, or "".
func optionOwner(key string) string {
	for _, name := range drivers.Names() {
		f, _ := drivers.Lookup(name)
		o := f(drivers.Settings{}).Options()
		if o == nil {
			continue
		}
		if fields, _, _ := structFields(reflect.TypeOf(o).Elem()); fields != nil {
			if _, ok := fields[key]; ok {
				return name
			}
		}
	}
	return ""
}

func (d *decoder) decodeSlice(path string, n ast.Node, v reflect.Value, depth int) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.mismatch(path, n, "a list")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
	for i, item := range seq.Values {
		p := drivers.Index(path, i)
		d.lines[p] = lineOfNode(item)
		d.decode(p, item, s.Index(i), depth+1)
	}
	v.Set(s)
}

func (d *decoder) decodeMap(path string, n ast.Node, v reflect.Value, depth int) {
	m, ok := d.asMapping(path, n, "a mapping (key: value lines)")
	if !ok {
		return
	}
	out := reflect.MakeMap(v.Type())
	for _, e := range d.entries(path, m, depth) {
		p := drivers.Key(path, e.key)
		d.lines[p] = e.line
		val := reflect.New(v.Type().Elem()).Elem()
		d.decode(p, e.value, val, depth+1)
		out.SetMapIndex(reflect.ValueOf(e.key).Convert(v.Type().Key()), val)
	}
	v.Set(out)
}

// suggest returns `; did you mean "x"?` for a near miss among names, or "".
func suggest(key string, names []string) string {
	best, bestDist := "", 3
	for _, name := range names {
		if dist := editDistance(strings.ToLower(key), name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	if best == "" {
		known := slices.Clone(names)
		slices.Sort(known)
		return "; known keys here: " + strings.Join(known, ", ")
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
