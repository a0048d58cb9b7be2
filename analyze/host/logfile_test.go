package host

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestLineBlocks reads lines through a small buffer, one byte per Read at
// times, and checks each line keeps its number and a too-long line is
// skipped.
func TestLineBlocks(t *testing.T) {
	long := strings.Repeat("x", 100)
	text := "one\ntwo\n" + long + "\nfour\n\n" + long + long + "\nseven\neight"
	for _, r := range []struct {
		name string
		r    io.Reader
	}{
		{"whole", strings.NewReader(text)},
		{"one byte reads", iotest.OneByteReader(strings.NewReader(text))},
	} {
		lb := newLineBlocks(r.r, make([]byte, 32))
		var got []string
		for {
			block, n, err := lb.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: next: %v", r.name, err)
			}
			for _, l := range strings.SplitAfter(string(block), "\n") {
				if l != "" {
					got = append(got, fmt.Sprintf("%d:%s", n, strings.TrimSuffix(l, "\n")))
					n++
				}
			}
		}
		want := []string{"1:one", "2:two", "4:four", "5:", "7:seven", "8:eight"}
		if !slices.Equal(got, want) || lb.long != 2 || lb.line != 9 {
			t.Errorf("%s: lines %q, long %d, next line %d; want %q, 2, 9", r.name, got, lb.long, lb.line, want)
		}
	}
}

// TestAccessLogBounds checks the 1 MiB line rule and MaxLogBytes.
func TestAccessLogBounds(t *testing.T) {
	dir := t.TempDir()
	at := func(m int) time.Time { return abuseTime.Add(time.Duration(m) * time.Minute) }
	req := "GET /?q=203.0.113.44 HTTP/1.1"
	huge := accessLine("198.51.100.7", at(1), "+0000", "GET /?x="+strings.Repeat("A", maxLineLen)+"&q=203.0.113.44 HTTP/1.1")
	var b bytes.Buffer
	b.WriteString(lines(accessLine("198.51.100.7", at(0), "+0000", req), huge))
	for i := 0; i < 3; i++ {
		b.WriteString(lines(accessLine("198.51.100.7", at(2+i), "+0000", req)))
	}
	write(t, filepath.Join(dir, "access.log"), b.String(), winTo)
	o := Options{AccessLogs: []string{filepath.Join(dir, "access.log")}, From: winFrom, To: winTo,
		Targets: addrs("203.0.113.44"), ProcRoot: dir, CronPaths: []string{}, UnitDirs: []string{}}
	res, err := Collect(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 || res.Findings[0].Count != 4 || !slices.Equal(res.Findings[0].Lines, []int{1, 3, 4, 5}) {
		dump(t, res)
		t.Errorf("Collect with a 1 MiB line: want one finding for lines 1, 3, 4, 5")
	}
	if !slices.ContainsFunc(res.Problems, func(s string) bool { return strings.Contains(s, "1 lines longer than 1 MiB skipped") }) {
		t.Errorf("Collect problems = %q, want the long line noted", res.Problems)
	}

	last := lines(accessLine("198.51.100.7", at(4), "+0000", req))
	o.MaxLogBytes = int64(b.Len() - len(last) + 20) // cuts the last line before its time
	res, err = Collect(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 || res.Findings[0].Count != 3 {
		dump(t, res)
		t.Errorf("Collect with MaxLogBytes: want 3 lines found")
	}
	if !slices.ContainsFunc(res.Problems, func(s string) bool { return strings.Contains(s, "read only the first") }) {
		t.Errorf("Collect problems = %q, want the cut noted", res.Problems)
	}
}

// TestGroupLinesCap checks that Lines stops at 1000 while Count goes on.
func TestGroupLinesCap(t *testing.T) {
	gs := newReqGroups()
	for n := 1; n <= 1500; n++ {
		gs.add("k", "log", nounRequest, "to flagged script /x.php", n, "192.0.2.1")
		gs.add("k", "log", nounRequest, "to flagged script /x.php", n, "192.0.2.1") // the same line again
	}
	c := newCollector(context.Background(), Options{})
	c.flush(gs)
	f := c.findings[0]
	if f.Count != 1500 || len(f.Lines) != maxGroupLines || f.Lines[999] != 1000 || f.Line != 1 {
		t.Errorf("group of 1500 lines: count %d, %d lines, line %d", f.Count, len(f.Lines), f.Line)
	}
}
