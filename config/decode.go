package config

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// decode fills a rawConfig from data and reports what stands in the way.
//
// go-toml stops at the first value it cannot store (a string where a
// boolean belongs, a key defined twice), which would leave the admin fixing
// one problem per run. So after each such error the top-level expression
// holding it is blanked out, with spaces so that every other byte keeps its
// line and column, and decoding starts again. Unknown keys come last: strict
// mode finishes decoding before it lists them all in one
// *toml.StrictMissingError, so the raw value is complete and the rest of the
// file is still validated.
//
// ok is false when the raw value is partial (a syntax error, or a decode
// error that lies in no expression): validating it would only report
// present keys as missing.
func (c *checker) decode(data []byte, syntaxErr error) (raw rawConfig, ok bool) {
	work := bytes.Clone(data)
	blanked := make([]bool, len(c.idx.exprs))
	c.foldedKeys(work, blanked)
	for n := 0; ; n++ {
		if n == maxDecodeErrors {
			// Each step decodes the whole document again; past this many
			// the file is not a config with typos, and the list is long
			// enough to work on.
			last := c.problems[len(c.problems)-1]
			c.report(Problem{Line: last.Line, Key: last.Key, Msg: "too many problems; fix these first"})
			return raw, false
		}
		raw = rawConfig{}
		err := toml.NewDecoder(bytes.NewReader(work)).DisallowUnknownFields().Decode(&raw)
		var missing *toml.StrictMissingError
		var de *toml.DecodeError
		switch {
		case err == nil:
			return raw, syntaxErr == nil
		case errors.As(err, &missing):
			for i := range missing.Errors {
				c.unknown(&missing.Errors[i])
			}
			return raw, syntaxErr == nil
		case errors.As(err, &de):
			if !c.stepOver(work, blanked, de) {
				return raw, false
			}
		default:
			// Only a misuse of the decoder gets here; say so at line 1
			// rather than print nothing.
			c.report(Problem{Line: 1, Msg: fmt.Sprintf("decode: %v", err)})
			return raw, false
		}
	}
}

// maxDecodeErrors bounds the decode errors reported for one file.
const maxDecodeErrors = 100

// stepOver reports a decode error and blanks the expression that holds it in
// work, returning false when there is none left to blank.
func (c *checker) stepOver(work []byte, blanked []bool, de *toml.DecodeError) bool {
	line, col := de.Position()
	off := c.idx.offset(line, col)
	i := c.idx.exprAt(off)
	at := where{parts: de.Key()}
	if ent, ok := c.idx.entryAt(off); ok {
		at = where{key: ent.path, parts: ent.parts, elem: ent.elem, got: kindName(ent.kind)}
	} else if i >= 0 && c.idx.exprs[i].header {
		e := c.idx.exprs[i]
		at = where{key: e.path, parts: e.parts, got: "a table"}
		if e.arrayTable {
			at.key, at.got = e.path[:strings.LastIndexByte(e.path, '[')], "an array of tables"
		}
	} else {
		at.key = c.idx.keyPath(off, de.Key())
	}
	c.report(Problem{Line: line, Key: at.key, Msg: c.decodeMsg(de, line, at)})

	if i < 0 || blanked[i] {
		return false
	}
	c.blank(work, blanked, i)
	return true
}

// where is what the document says about the place of a decode error.
type where struct {
	key   string   // Problem.Key
	parts []string // key parts without indexes, for the raw structs
	elem  bool     // an array element
	got   string   // what the document has there, "" when unknown
}

// blank replaces expression i in work with spaces, keeping newlines, and
// suppresses validation of the keys it set.
func (c *checker) blank(work []byte, blanked []bool, i int) {
	blanked[i] = true
	e := c.idx.exprs[i]
	for j := e.start; j < e.end && j < len(work); j++ {
		if work[j] != '\n' {
			work[j] = ' '
		}
	}
	if !e.header {
		c.suppress(e.path)
		return
	}
	// A table that cannot be decoded takes its keys with it. Suppress
	// those keys, not the whole table: a table defined twice keeps the
	// keys of its first definition, and their problems still count. The
	// unindexed form covers [[imap]], which decodes (if at all) as [imap].
	for j := i + 1; j < len(c.idx.exprs) && !c.idx.exprs[j].header; j++ {
		blanked[j] = true
		c.suppress(c.idx.exprs[j].path)
		c.suppress(stripIndexes(c.idx.exprs[j].path))
	}
}

// foldedKeys reports keys that differ from a known key only in case, and
// blanks them before decoding: TOML keys are case-sensitive, but go-toml
// matches struct fields without regard to case.
func (c *checker) foldedKeys(work []byte, blanked []bool) {
	reported := 0
	check := func(start int, parts []string, what string) {
		at, known := foldedKey(parts)
		if at < 0 || reported == maxDecodeErrors {
			return
		}
		i := c.idx.exprAt(start)
		if i < 0 || blanked[i] {
			return
		}
		reported++
		path := c.idx.exprs[i].path
		if e, ok := c.idx.entryAt(start); ok && !e.elem {
			path = e.path
		}
		c.report(Problem{Line: c.idx.lineAt(start), Key: path,
			Msg: fmt.Sprintf("unknown %s; did you mean %s? (keys are case-sensitive)", what, known)})
		c.blank(work, blanked, i)
	}
	for _, e := range c.idx.exprs {
		if e.header {
			check(e.start, e.parts, "table")
		}
	}
	for _, e := range c.idx.entries {
		if !e.elem {
			check(e.start, e.parts, "key")
		}
	}
}

// stripIndexes removes the "[n]" array indexes from a key path.
func stripIndexes(path string) string {
	var b strings.Builder
	depth := 0
	for _, r := range path {
		switch {
		case r == '[':
			depth++
		case r == ']' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// decodeMsg rewrites go-toml's message for an admin: its type errors name Go
// struct fields, which mean nothing outside this package.
func (c *checker) decodeMsg(de *toml.DecodeError, line int, at where) string {
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	switch {
	case strings.HasPrefix(msg, "cannot decode TOML"), strings.HasPrefix(msg, "cannot store"):
		want := expectedType(at.parts, at.elem)
		switch {
		case want != "" && at.got != "":
			return fmt.Sprintf("want %s, not %s", want, at.got)
		case want != "":
			return "want " + want
		}
	case strings.HasSuffix(msg, "already defined"), strings.HasSuffix(msg, "already exists"):
		if first := c.idx.lineOf(at.key); first > 0 && first != line {
			return fmt.Sprintf("already defined on line %d", first)
		}
		return "already defined"
	}
	return msg
}

// unknown reports a key or table that no field of the raw structs takes.
func (c *checker) unknown(e *toml.DecodeError) {
	line, col := e.Position()
	key := c.idx.keyPath(c.idx.offset(line, col), e.Key())
	what := "key"
	if strings.HasSuffix(e.Error(), "missing table") {
		what = "table"
	}
	msg := "unknown " + what
	if parts := e.Key(); len(parts) > 0 {
		if s := suggest(parts[len(parts)-1], knownKeys(parts[:len(parts)-1])); s != "" {
			msg += "; did you mean " + s + "?"
		}
	}
	c.report(Problem{Line: line, Key: key, Msg: msg})
}

// suggest returns the known key closest to name when it is close enough to
// be a typo (at most two edits, and fewer than half of name's letters).
func suggest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestD && 2*d < len(name) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b in bytes.
func editDistance(a, b string) int {
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

// kindName names a TOML value kind with its article, for "want …, not …".
func kindName(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Bool:
		return "a boolean"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Array:
		return "an array"
	case unstable.InlineTable:
		return "a table"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "a date or time"
	}
	return "a " + strings.ToLower(k.String())
}

// syntaxProblem places a parser error whose decode did not report it
// itself; it falls back to the last line when the highlight lies outside
// the document.
func syntaxProblem(data []byte, idx *index, err error) Problem {
	line := len(idx.lineStarts)
	var pe *unstable.ParserError
	if errors.As(err, &pe) && len(pe.Highlight) > 0 {
		off := cap(data) - cap(pe.Highlight)
		if off >= 0 && off < len(data) && &data[off] == &pe.Highlight[0] {
			line = idx.lineAt(off)
		}
	}
	return Problem{Line: line, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
}
