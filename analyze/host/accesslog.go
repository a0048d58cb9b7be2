package host

import (
	"bytes"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// scanAccessLogs looks in the access logs for in-window requests that
// contain a target address or ask for a flagged script.
func (c *collector) scanAccessLogs() {
	if len(c.o.AccessLogs) == 0 {
		return
	}
	files := c.expandLogs("access log", c.o.AccessLogs)
	needles := c.logNeedles()
	if len(needles.needles) == 0 {
		return // no target and no flagged script: nothing to find
	}
	buf := make([]byte, blockSize)
	gs := newReqGroups()
	defer c.flush(gs) // a partial scan still reports what it found
	for _, p := range files {
		if c.stopped() {
			return
		}
		c.scanAccessLog(p, needles, buf, gs)
	}
}

// logNeedles are the literals a log line must contain to be parsed at all:
// the targets as text and the base names of the flagged scripts.
func (c *collector) logNeedles() *needleSet {
	var ns [][]byte
	for _, a := range c.addrs {
		ns = append(ns, a.text)
	}
	for _, s := range c.scripts {
		ns = append(ns, s.base)
	}
	slices.SortFunc(ns, bytes.Compare)
	return newNeedleSet(slices.CompactFunc(ns, bytes.Equal))
}

// scanAccessLog scans one access log, rotated or not, gzip or not.
func (c *collector) scanAccessLog(p string, needles *needleSet, buf []byte, gs *reqGroups) {
	// A log last written before the window opened holds no line in it:
	// web servers write a request's line after its time stamp.
	if fi, err := os.Stat(p); err == nil && fi.ModTime().Before(c.o.From) {
		return
	}
	lr, err := openLog(p, c.o.MaxLogBytes)
	if err != nil {
		c.pathProblem("access log", p, err)
		return
	}
	defer lr.Close()
	lb := newLineBlocks(lr.r, buf)
	var starts []int
	long := 0
	for !c.stopped() {
		block, first, err := lb.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.problem("access log %s: line %d: %v", p, lb.line, err)
			break
		}
		starts = candidateLines(block, needles, starts)
		n, at := first, 0
		for _, s := range starts {
			n += bytes.Count(block[at:s], []byte{'\n'})
			at = s
			line := block[s:]
			if e := bytes.IndexByte(line, '\n'); e >= 0 {
				line = line[:e]
			}
			if len(line) > maxLineLen {
				long++
				continue
			}
			c.accessLine(p, n, line, gs)
		}
	}
	c.noteLog("access log", p, lb, lr, long)
}

// candidateLines returns the start offsets of the lines of block that
// contain any of the needles, in order. This literal search is the only
// work done on most lines, so it runs over the whole block, not line by line.
func candidateLines(block []byte, needles *needleSet, starts []int) []int {
	starts = starts[:0]
	for off := 0; off < len(block); {
		i := needles.index(block[off:])
		if i < 0 {
			break
		}
		i += off
		starts = append(starts, bytes.LastIndexByte(block[:i], '\n')+1)
		e := bytes.IndexByte(block[i:], '\n')
		if e < 0 {
			break
		}
		off = i + e + 1 // the next line
	}
	return starts
}

// accessLine groups one candidate line when it lies in the window.
func (c *collector) accessLine(p string, n int, line []byte, gs *reqGroups) {
	t, ok := accessTime(line)
	if !ok || !c.inWindow(t) {
		return
	}
	client := accessClient(line)
	for _, a := range c.addrs {
		if a.index(line) >= 0 {
			target := a.addr.String()
			gs.add(p+"\x00t\x00"+target, p, nounRequest, "in the window containing target "+target, n, client)
		}
	}
	if len(c.scripts) == 0 {
		return
	}
	if u, ok := requestPath(line); ok {
		c.scriptRequest(gs, p, n, u, client, nounRequest)
	}
}

// scriptRequest groups a request for URL path u when it hits a flagged
// script; nn names what the log line records.
func (c *collector) scriptRequest(gs *reqGroups, p string, n int, u, client string, nn noun) {
	for _, s := range c.scripts {
		for _, su := range s.urls {
			if u == su || strings.HasPrefix(u, su+"/") { // also /x.php/extra (PATH_INFO)
				gs.add(p+"\x00s\x00"+s.path, p, nn, "to flagged script "+su, n, client)
				return
			}
		}
	}
}

// accessTime parses the time stamp of a common or combined log line,
// [20/Apr/2026:21:02:13 +0000].
func accessTime(line []byte) (time.Time, bool) {
	i := bytes.IndexByte(line, '[')
	if i < 0 {
		return time.Time{}, false
	}
	j := bytes.IndexByte(line[i:], ']')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse("02/Jan/2006:15:04:05 -0700", string(line[i+1:i+j]))
	return t, err == nil
}

// accessClient returns the client address of a log line: the first field,
// or the second in the vhost_combined format (host:port client …).
func accessClient(line []byte) string {
	fields := bytes.Fields(line[:min(len(line), 200)])
	for i := 0; i < len(fields) && i < 2; i++ {
		if a, err := netip.ParseAddr(string(fields[i])); err == nil {
			return a.String()
		}
	}
	return ""
}

// requestPath returns the cleaned, decoded URL path of the request line,
// "POST /wp-content/uploads/x.php?a=1 HTTP/1.1" → /wp-content/uploads/x.php.
func requestPath(line []byte) (string, bool) {
	i := bytes.IndexByte(line, ']')
	if i < 0 {
		return "", false
	}
	q := bytes.IndexByte(line[i:], '"')
	if q < 0 {
		return "", false
	}
	req := line[i+q+1:]
	if e := bytes.IndexByte(req, '"'); e >= 0 {
		req = req[:e]
	}
	return urlPath(string(req))
}

// urlPath takes the path out of a request line or a bare URI.
func urlPath(req string) (string, bool) {
	fields := strings.Fields(req)
	target := req
	if len(fields) >= 2 {
		target = fields[1]
	} else if len(fields) == 1 {
		target = fields[0]
	}
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") { // proxy form
		rest := target[strings.Index(target, "//")+2:]
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			return "/", true
		}
		target = rest[slash:]
	}
	if k := strings.IndexAny(target, "?#"); k >= 0 {
		target = target[:k]
	}
	if !strings.HasPrefix(target, "/") {
		return "", false
	}
	if dec, err := url.PathUnescape(target); err == nil {
		target = dec
	}
	return path.Clean(target), true
}
