package evidence

import (
	"encoding/json"
	goparser "go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostileExtracts are about 5 MB each (1 MB under the race detector): one
// huge line, and 100k short lines (20k) of each shape. A rule that re-read the rest of a line (or of the
// extract) at each match would take hours on them, so finishing within go
// test's timeout shows the parser stays linear. Timing is never asserted.
func hostileExtracts() map[string]string {
	n, count := 5<<20, 100000
	if raceEnabled {
		n, count = 1<<20, 20000
	}
	rep := func(s string) string { return strings.Repeat(s, n/len(s)) }
	lines := func(s string) string { return strings.Repeat(s+"\n", count) }
	return map[string]string{
		"huge line of labels": rep("client: 198.51.100.1, server: x, request: \"GET / HTTP/1.1\", host: \"a\" X-Forwarded-For: 1.2.3.4 SRC=1.1.1.1 DST=2.2.2.2 dst=3.3.3.3 "),
		"huge line of arrows": rep("198.51.100.1:1 -> 203.0.113.1:2 "),
		"huge address run":    rep("1.1.1.1."),
		"huge colon run":      rep("a:b:"),
		"huge clock run":      rep("Apr 8 18:59:01 "),
		"huge sshd line":      "Apr  8 18:59:01 host sshd[1]: " + rep("Failed password for root from 198.51.100.1 port 1 "),
		"huge modsec line":    "[client 198.51.100.1] ModSecurity: " + rep(`[id "1"] [msg "x"] [hostname "h"] `),
		"huge received":       "Received: from x ([198.51.100.1])" + rep(" by mx.example.org;"),
		"huge table row":      "Src IP  Dst IP  DPort\n" + rep("198.51.100.1  203.0.113.1  22  "),
		"short lines":         lines("Apr  8 18:59:01 h sshd[1]: Failed password for root from 198.51.100.41 port 5 ssh2"),
		"short access lines":  lines(`198.51.100.9 - - [20/Apr/2026:21:02:13 +0000] "GET / HTTP/1.1" 200 1 "-" "-" "203.0.113.1"`),
		"short x-arf lines":   lines("Report-Type: x\nSource: 198.51.100.1"),
		"short blank lines":   lines("\n>\n"),
		"short table rows":    "Src IP  Dst IP  DPort\n" + lines("198.51.100.1  203.0.113.1  22"),
		"short received":      lines("Received: from x ([198.51.100.1])\n\tby mx.example.org; Sat, 11 Apr 2026 12:41:09 +0200"),
	}
}

func TestHostileExtracts(t *testing.T) {
	if testing.Short() {
		t.Skip("hostile extracts take a few seconds")
	}
	ref := time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC)
	for name, text := range hostileExtracts() {
		t.Run(name, func(t *testing.T) {
			res := Parse(text, ref)
			if res.Events == nil || res.Summaries == nil {
				t.Errorf("Parse(%s) gave nil events or summaries", name)
			}
			for _, ev := range res.Events {
				if len(ev.Detail) > maxDetail+len("…") {
					t.Fatalf("Parse(%s) detail of %d bytes, want at most %d", name, len(ev.Detail), maxDetail)
				}
			}
		})
	}
}

// TestEmpty checks that an empty extract gives [] in JSON, not null.
func TestEmpty(t *testing.T) {
	b, err := json.Marshal(Parse("", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"events":[],"summaries":[],"lines":0,"unparsed":0}`; string(b) != want {
		t.Errorf("Parse(\"\") = %s, want %s", b, want)
	}
}

// TestImports keeps the package a leaf: the standard library, abuse and
// the internal scanners, never the mail parser.
func TestImports(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := goparser.ParseFile(token.NewFileSet(), f, nil, goparser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !strings.Contains(path, ".") {
				continue // standard library
			}
			switch path {
			case "github.com/abuse-responder/abuse-responder/abuse",
				"github.com/abuse-responder/abuse-responder/internal/logtime",
				"github.com/abuse-responder/abuse-responder/internal/ipscan",
				"github.com/abuse-responder/abuse-responder/internal/logtext",
				"github.com/abuse-responder/abuse-responder/internal/logtable":
			default:
				t.Errorf("%s imports %s; evidence may import only the standard library, abuse and internal/{logtime,ipscan,logtext,logtable}", f, path)
			}
		}
	}
}

// benchExtract is about 1 MB of realistic lines of every family.
func benchExtract() string {
	var lines []string
	for _, f := range []string{"sshd", "fail2ban", "access", "nginx-error", "apache-error", "modsec", "modsec-audit",
		"firewall", "portscan", "flow", "table", "aws-csv", "xarf", "vuln-row", "received"} {
		raw, err := os.ReadFile("testdata/" + f + ".txt")
		if err != nil {
			panic(err)
		}
		lines = append(lines, string(raw))
	}
	block := strings.Join(lines, "\n")
	return strings.Repeat(block+"\n", (1<<20)/len(block)+1)
}

func BenchmarkParse(b *testing.B) {
	text := benchExtract()
	ref := time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Parse(text, ref)
	}
}
