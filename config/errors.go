package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error lists every problem found in one config file. Load returns it, and
// only it, for a file that was read but is not a valid config, so that
// check-config can print all problems at once and exit 2 (DESIGN.md,
// "Command line") instead of making the admin fix them one run at a time.
type Error struct {
	// File is the name the problems refer to: the path given to Load.
	File string
	// Problems holds at least one problem, sorted by line; problems that
	// have no line (a required key that is missing) come last.
	Problems []Problem
}

// Problem is one thing wrong with a config file.
type Problem struct {
	// Line is the 1-based line the problem is on, or 0 when the file has
	// no line for it (a required key that is missing altogether).
	Line int
	// Key is the dotted key path, such as "imap.poll_interval",
	// "remediate.allowlist[2]" or "aws.accounts[0].role_arn" (array
	// elements and array-table entries are indexed from 0 in brackets).
	// It is empty only for a syntax error, which has a Line instead.
	Key string
	// Msg says what is wrong, and where it helps, what would be right. It
	// never contains a secret's value.
	Msg string
}

// Error returns one line per problem, "FILE:LINE: key.path: message", with
// the ":LINE" or the "key.path: " left out when the problem has none.
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
		if p.Key != "" {
			b.WriteString(p.Key)
			b.WriteString(": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// sortProblems orders problems by line, keeping the order in which they
// were found among equals, so output follows the file and the missing
// keys, which have no line, come last in the order of the sections.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Line, b.Line)
	})
}

// checker collects problems during decoding and validation. Validation
// problems get their line from the document index; keys whose value could
// not be decoded are suppressed, since their problem is already reported
// and the default that stands in for them would only add noise.
type checker struct {
	opts       Options
	idx        *index
	problems   []Problem
	suppressed map[string]bool
}

// report adds a problem exactly as given.
func (c *checker) report(p Problem) {
	c.problems = append(c.problems, p)
}

// addf adds a validation problem on key, at the line where the file sets
// that key (0 when it does not).
func (c *checker) addf(key, format string, args ...any) {
	if c.isSuppressed(key) {
		return
	}
	c.report(Problem{Line: c.idx.lineOf(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// suppress drops later validation problems on key and everything under it.
func (c *checker) suppress(key string) {
	if key == "" {
		return
	}
	if c.suppressed == nil {
		c.suppressed = map[string]bool{}
	}
	c.suppressed[key] = true
}

// isSuppressed reports whether problems on key are being dropped because
// the value of key, or of a table or array it lies in, could not be
// decoded.
func (c *checker) isSuppressed(key string) bool {
	if len(c.suppressed) == 0 {
		return false
	}
	for i := 1; i < len(key); i++ {
		if (key[i] == '.' || key[i] == '[') && c.suppressed[key[:i]] {
			return true
		}
	}
	return c.suppressed[key]
}

// elem names element i of the array at key, in the form Problem.Key uses.
func elem(key string, i int) string {
	return fmt.Sprintf("%s[%d]", key, i)
}
