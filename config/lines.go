package config

import (
	"sort"
	"strconv"

	"github.com/pelletier/go-toml/v2/unstable"
)

// index maps a parsed document back to its text. The decoder into structs
// forgets where values came from, so one pass of go-toml's unstable parser
// records, for every key, table header and array element, its key path in
// the form of Problem.Key and its position. Paths index arrays and array
// tables from 0 in brackets: the second [[aws.accounts]] entry's role_arn
// is "aws.accounts[1].role_arn", the third allowlist entry is
// "remediate.allowlist[2]". Brackets, not ".1", because a bare TOML key
// may itself be "1".
type index struct {
	lineStarts []int          // byte offset where each line starts
	lines      map[string]int // key path → line where it is first set
	keyAt      map[int]string // offset of a key's first byte → key path
	entries    []entry        // key-values and array elements
	exprs      []expr         // top-level expressions, in document order
	arrays     map[string]int // array-table path → entries so far
}

// entry is a key-value or an array element: where it lies, for naming the
// key of a decode error found at an offset.
type entry struct {
	start, end int
	path       string
	parts      []string      // path as TOML key parts, without array indexes
	elem       bool          // an array element rather than a key-value
	kind       unstable.Kind // kind of the value
}

// expr is a top-level expression: the unit that decoding can step over.
type expr struct {
	start, end int
	path       string
	parts      []string // path as TOML key parts, without array indexes
	header     bool     // a [table] or [[array table]] header
	arrayTable bool     // an [[array table]] header
}

// buildIndex parses data. On a syntax error it returns the error and an
// index that covers only the lines, which is enough to place that error.
func buildIndex(data []byte) (*index, error) {
	x := &index{
		lineStarts: []int{0},
		lines:      map[string]int{},
		keyAt:      map[int]string{},
		arrays:     map[string]int{},
	}
	for i, b := range data {
		if b == '\n' {
			x.lineStarts = append(x.lineStarts, i+1)
		}
	}
	var p unstable.Parser
	p.Reset(data)
	var table scope
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = x.header(n)
		case unstable.KeyValue:
			x.keyValue(table, n, true)
		}
	}
	if err := p.Error(); err != nil {
		return x, err
	}
	// A header's span runs to the next header: stepping over a table that
	// cannot be decoded means stepping over its keys too.
	end := len(data)
	for i := len(x.exprs) - 1; i >= 0; i-- {
		if x.exprs[i].header {
			x.exprs[i].end = end
			end = x.exprs[i].start
		}
	}
	return x, nil
}

// scope is where a key is: its key path (Problem.Key form) and its TOML
// key parts without array indexes (the form go-toml and the raw structs
// use).
type scope struct {
	path  string
	parts []string
}

// child returns the scope of key part under s.
func (s scope) child(part string) scope {
	return scope{path: joinKey(s.path, part), parts: append(s.parts[:len(s.parts):len(s.parts)], part)}
}

// header records a [table] or [[array table]] header and returns the scope
// of the key-values after it.
func (x *index) header(n *unstable.Node) scope {
	var keys []*unstable.Node
	for it := n.Key(); it.Next(); {
		keys = append(keys, it.Node())
	}
	var parts []string
	path := ""
	for i, k := range keys {
		parts = append(parts, string(k.Data))
		path = joinKey(path, string(k.Data))
		last := i == len(keys)-1
		if count, ok := x.arrays[path]; ok && !(last && n.Kind == unstable.ArrayTable) {
			// A header below an array table extends its last entry.
			path = elem(path, count-1)
		}
		if !last || n.Kind != unstable.ArrayTable {
			x.record(path, int(k.Raw.Offset))
		}
	}
	if n.Kind == unstable.ArrayTable {
		count := x.arrays[path]
		x.arrays[path] = count + 1
		x.record(path, int(keys[0].Raw.Offset))
		path = elem(path, count)
		x.record(path, int(keys[0].Raw.Offset))
	}
	first := int(keys[0].Raw.Offset)
	x.keyAt[first] = path
	// Headers stand on a line of their own, so the line start is the '['.
	x.exprs = append(x.exprs, expr{start: x.lineStart(first), path: path, parts: parts,
		header: true, arrayTable: n.Kind == unstable.ArrayTable})
	return scope{path: path, parts: parts}
}

// keyValue records a key-value in table, then its value's contents.
func (x *index) keyValue(table scope, n *unstable.Node, top bool) {
	s := table
	first := -1
	for it := n.Key(); it.Next(); {
		k := it.Node()
		if first < 0 {
			first = int(k.Raw.Offset)
		}
		s = s.child(string(k.Data))
		x.record(s.path, first)
	}
	x.keyAt[first] = s.path
	v := n.Value()
	start, end := first, int(n.Raw.Offset+n.Raw.Length)
	if _, vend, ok := x.value(s, v); ok && vend > end {
		end = vend
	}
	x.entries = append(x.entries, entry{start: start, end: end, path: s.path, parts: s.parts, kind: v.Kind})
	if top {
		x.exprs = append(x.exprs, expr{start: start, end: end, path: s.path, parts: s.parts})
	}
}

// value records what a value contains (array elements, inline-table keys)
// and returns its span; containers have none of their own in the AST, so
// theirs is that of their contents, and ok is false for an empty one.
func (x *index) value(sc scope, v *unstable.Node) (start, end int, ok bool) {
	switch v.Kind {
	case unstable.Array:
		i := 0
		for it := v.Children(); it.Next(); i++ {
			c := it.Node()
			p := scope{path: elem(sc.path, i), parts: sc.parts}
			if s, e, cok := x.value(p, c); cok {
				x.record(p.path, s)
				x.entries = append(x.entries, entry{start: s, end: e, path: p.path, parts: p.parts, elem: true, kind: c.Kind})
				start, end, ok = widen(start, end, ok, s, e)
			}
		}
		return start, end, ok
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			c := it.Node()
			if c.Kind != unstable.KeyValue {
				continue
			}
			x.keyValue(sc, c, false)
			last := x.entries[len(x.entries)-1]
			start, end, ok = widen(start, end, ok, last.start, last.end)
		}
		return start, end, ok
	default:
		if v.Raw.Length == 0 && v.Raw.Offset == 0 {
			return 0, 0, false
		}
		return int(v.Raw.Offset), int(v.Raw.Offset + v.Raw.Length), true
	}
}

func widen(start, end int, ok bool, s, e int) (int, int, bool) {
	if !ok {
		return s, e, true
	}
	return min(start, s), max(end, e), true
}

// record notes the line of path at its first appearance only: a table
// reopened by a dotted key is reported where it was opened.
func (x *index) record(path string, offset int) {
	if _, seen := x.lines[path]; !seen {
		x.lines[path] = x.lineAt(offset)
	}
}

// lineOf returns the line where path is set, or 0.
func (x *index) lineOf(path string) int {
	return x.lines[path]
}

// lineAt returns the 1-based line of a byte offset.
func (x *index) lineAt(offset int) int {
	return sort.Search(len(x.lineStarts), func(i int) bool { return x.lineStarts[i] > offset })
}

// lineStart returns the offset of the start of the line holding offset.
func (x *index) lineStart(offset int) int {
	return x.lineStarts[x.lineAt(offset)-1]
}

// offset turns go-toml's 1-based line and byte column into an offset.
func (x *index) offset(line, col int) int {
	if line < 1 || line > len(x.lineStarts) {
		return -1
	}
	return x.lineStarts[line-1] + max(col, 1) - 1
}

// entryAt returns the innermost key-value or element holding offset.
func (x *index) entryAt(offset int) (entry, bool) {
	var best entry
	found := false
	for _, e := range x.entries {
		if e.start <= offset && offset < e.end && (!found || e.end-e.start < best.end-best.start) {
			best, found = e, true
		}
	}
	return best, found
}

// exprAt returns the index of the top-level expression holding offset, or
// -1: a key-value when one holds it, else the table header whose line or
// body (comments, blank lines) holds it.
func (x *index) exprAt(offset int) int {
	i := sort.Search(len(x.exprs), func(i int) bool { return x.exprs[i].start > offset }) - 1
	if i < 0 {
		return -1
	}
	if e := x.exprs[i]; e.start <= offset && offset < e.end {
		return i
	}
	// Between expressions: inside the body of the table above, if any.
	for ; i >= 0 && !x.exprs[i].header; i-- {
	}
	if i >= 0 && offset < x.exprs[i].end {
		return i
	}
	return -1
}

// joinKey appends a key part to a path, quoted as TOML would when it is
// not a bare key, so that "a.b" = 1 does not read as a table a.
func joinKey(path, part string) string {
	if !isBare(part) {
		part = strconv.Quote(part)
	}
	if path == "" {
		return part
	}
	return path + "." + part
}

func isBare(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// keyPath names the key of a go-toml error by the offset of its first
// byte, falling back to go-toml's own key, which has no array indexes.
func (x *index) keyPath(offset int, key []string) string {
	if p, ok := x.keyAt[offset]; ok {
		return p
	}
	path := ""
	for _, k := range key {
		path = joinKey(path, k)
	}
	return path
}
