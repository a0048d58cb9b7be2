package host

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// maxLineLen is the longest log line examined; longer ones are skipped and
// counted, since no web server writes them for a real request.
const maxLineLen = 1 << 20

// blockSize is the read buffer of a log scan. It holds several long lines,
// and large reads keep the per-call cost of the scan low.
const blockSize = 4 << 20

// rotatedRE matches what logrotate appends to a log's name: .1, .2.gz,
// -20260401, -20260401.gz, -2026040112.
var rotatedRE = regexp.MustCompile(`^(?:\.\d+|-\d{8}(?:\d{2})?)?(?:\.gz)?$`)

// expandLogs returns the files the patterns match, with their rotated
// siblings, sorted and without duplicates. A pattern that matches nothing
// is noted in Problems.
func (c *collector) expandLogs(what string, patterns []string) []string {
	seen := map[string]bool{}
	var files []string
	for _, pat := range patterns {
		// Rotated names are longer than the name, so pattern+"*" finds
		// them all; each is kept only when, minus its rotation suffix, it
		// is a name the pattern matches.
		cands, err := filepath.Glob(pat + "*")
		if err != nil {
			c.problem("%s pattern %q: %v", what, pat, err)
			continue
		}
		n := 0
		for _, f := range cands {
			if !logName(pat, f) {
				continue
			}
			if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			n++
			if !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
		if n == 0 {
			c.problem("%s pattern %s matches no file", what, pat)
		}
	}
	slices.Sort(files)
	return files
}

// logName reports whether f is a name pat matches or one of its rotations.
func logName(pat, f string) bool {
	if ok, _ := filepath.Match(pat, f); ok {
		return true
	}
	for i := strings.LastIndexAny(f, ".-"); i > 0; i = strings.LastIndexAny(f[:i], ".-") {
		if rotatedRE.MatchString(f[i:]) {
			if ok, _ := filepath.Match(pat, f[:i]); ok {
				return true
			}
		}
	}
	return false
}

// logReader is an open log: the file, and a gzip reader over it when the
// content is gzip (by its magic bytes, not its name).
type logReader struct {
	f     *os.File
	r     io.Reader
	limit *io.LimitedReader
	inner io.Reader
}

// openLog opens p read-only for a scan bounded to max uncompressed bytes.
func openLog(p string, max int64) (*logReader, error) {
	f, err := openRead(p)
	if err != nil {
		return nil, err
	}
	var inner io.Reader = f
	var magic [2]byte
	if n, _ := f.ReadAt(magic[:], 0); n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(bufio.NewReaderSize(f, 256<<10))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("gzip %s: %w", p, err)
		}
		inner = zr
	}
	lr := &io.LimitedReader{R: inner, N: max}
	return &logReader{f: f, r: lr, limit: lr, inner: inner}, nil
}

// cut reports whether the scan stopped at the byte bound with data left.
func (l *logReader) cut() bool {
	if l.limit.N > 0 {
		return false
	}
	var one [1]byte
	n, _ := l.inner.Read(one[:])
	return n > 0
}

func (l *logReader) Close() error { return l.f.Close() }

// lineBlocks cuts a stream into blocks of whole lines, counting lines as it
// goes. A line too long for the buffer is skipped and counted in long.
type lineBlocks struct {
	r        io.Reader
	buf      []byte
	start    int  // buf[start:end] is not yet returned
	end      int  //
	line     int  // number of the next line, from 1
	long     int  // lines skipped for being longer than maxLineLen
	skipping bool // inside a line too long for buf
	err      error
}

func newLineBlocks(r io.Reader, buf []byte) *lineBlocks {
	return &lineBlocks{r: r, buf: buf[:cap(buf)], line: 1}
}

// next returns the next block of whole lines and the number of its first
// line. The block is valid until the next call. At the end it returns
// io.EOF, or the read error.
func (lb *lineBlocks) next() ([]byte, int, error) {
	for {
		if lb.start > 0 {
			lb.end = copy(lb.buf, lb.buf[lb.start:lb.end])
			lb.start = 0
		}
		if lb.err != nil {
			if lb.end > 0 && !lb.skipping { // a last line without '\n'
				block, first := lb.buf[:lb.end], lb.line
				lb.start, lb.line = lb.end, lb.line+1
				return block, first, nil
			}
			if lb.skipping {
				lb.skipping, lb.end = false, 0
				lb.line++
			}
			if lb.err == io.EOF || lb.err == io.ErrUnexpectedEOF {
				return nil, lb.line, io.EOF
			}
			return nil, lb.line, lb.err
		}
		n, err := io.ReadFull(lb.r, lb.buf[lb.end:])
		lb.end += n
		if err != nil {
			lb.err = err
		}
		if lb.skipping {
			i := bytes.IndexByte(lb.buf[:lb.end], '\n')
			if i < 0 {
				lb.end = 0
				continue
			}
			lb.skipping = false
			lb.line++
			lb.start = i + 1
		}
		last := bytes.LastIndexByte(lb.buf[lb.start:lb.end], '\n')
		if last < 0 {
			if lb.end-lb.start == len(lb.buf) { // one line fills the buffer
				lb.long++
				lb.skipping = true
				lb.start, lb.end = 0, 0
			}
			continue
		}
		block, first := lb.buf[lb.start:lb.start+last+1], lb.line
		lb.line += bytes.Count(block, []byte{'\n'})
		lb.start += last + 1
		return block, first, nil
	}
}

// noteLog adds the problems of one scanned log: long lines and a cut.
func (c *collector) noteLog(what, p string, lb *lineBlocks, lr *logReader, longCandidates int) {
	if n := lb.long + longCandidates; n > 0 {
		c.problem("%s %s: %d lines longer than 1 MiB skipped", what, p, n)
	}
	if lr.cut() {
		c.problem("%s %s: read only the first %d bytes (MaxLogBytes)", what, p, c.o.MaxLogBytes)
	}
}
