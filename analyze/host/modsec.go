package host

import (
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// scanModsecLogs looks in ModSecurity logs for in-window entries that hit a
// flagged script or contain a target. One file may mix the three shapes:
// error-log lines, serial audit entries (--id-A-- … --id-Z--) and JSON
// audit records, one per line.
func (c *collector) scanModsecLogs() {
	if len(c.o.ModsecLogs) == 0 {
		return
	}
	files := c.expandLogs("ModSecurity log", c.o.ModsecLogs)
	needles := c.logNeedles()
	if len(needles.needles) == 0 {
		return
	}
	buf := make([]byte, blockSize)
	gs := newReqGroups()
	defer c.flush(gs)
	for _, p := range files {
		if c.stopped() {
			return
		}
		c.scanModsecLog(p, needles, buf, gs)
	}
}

// auditEntry is a serial audit log entry being read.
type auditEntry struct {
	active  bool
	start   int // line of its --id-A-- boundary
	time    time.Time
	client  string
	uri     string
	targets []string
}

func (c *collector) scanModsecLog(p string, needles *needleSet, buf []byte, gs *reqGroups) {
	if fi, err := os.Stat(p); err == nil && fi.ModTime().Before(c.o.From) {
		return // see scanAccessLog
	}
	lr, err := openLog(p, c.o.MaxLogBytes)
	if err != nil {
		c.pathProblem("ModSecurity log", p, err)
		return
	}
	defer lr.Close()
	lb := newLineBlocks(lr.r, buf)
	var e auditEntry
	var section byte
	long := 0
	for !c.stopped() {
		block, n, err := lb.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.problem("ModSecurity log %s: line %d: %v", p, lb.line, err)
			break
		}
		for ; len(block) > 0; n++ {
			line := block
			if i := bytes.IndexByte(block, '\n'); i >= 0 {
				line, block = block[:i], block[i+1:]
			} else {
				block = nil
			}
			if len(line) > maxLineLen {
				long++
				continue
			}
			line = bytes.TrimSuffix(line, []byte{'\r'})
			if sec, ok := auditBoundary(line); ok {
				if sec == 'A' || sec == 'Z' {
					c.endEntry(p, &e, gs)
				}
				if sec == 'A' {
					e = auditEntry{active: true, start: n}
				}
				section = sec
				continue
			}
			if e.active {
				c.entryLine(&e, section, line)
				continue
			}
			if needles.index(line) < 0 {
				continue
			}
			if len(line) > 0 && line[0] == '{' {
				c.modsecJSON(p, n, line, gs)
			} else {
				c.modsecError(p, n, line, gs)
			}
		}
	}
	c.endEntry(p, &e, gs)
	c.noteLog("ModSecurity log", p, lb, lr, long)
}

// auditBoundary recognises a serial audit log boundary, --a1b2c3d4-A--,
// and returns its section letter.
func auditBoundary(line []byte) (byte, bool) {
	n := len(line)
	if n < 7 || !bytes.HasPrefix(line, []byte("--")) || !bytes.HasSuffix(line, []byte("--")) || line[n-4] != '-' {
		return 0, false
	}
	sec := line[n-3]
	if sec < 'A' || sec > 'Z' {
		return 0, false
	}
	for _, b := range line[2 : n-4] {
		if !isAlnum(b) {
			return 0, false
		}
	}
	return sec, true
}

// entryLine reads one line of a serial audit entry: the time and client
// from section A, the request line from section B, targets from any.
func (c *collector) entryLine(e *auditEntry, section byte, line []byte) {
	switch section {
	case 'A': // [20/Apr/2026:21:02:13 +0000] <id> <client ip> <client port> <server ip> <server port>
		if e.time.IsZero() {
			if t, ok := accessTime(line); ok {
				e.time = t
				if k := bytes.IndexByte(line, ']'); k >= 0 {
					if f := bytes.Fields(line[k+1:]); len(f) >= 2 {
						e.client = string(f[1])
					}
				}
			}
		}
	case 'B':
		if e.uri == "" && len(bytes.TrimSpace(line)) > 0 {
			e.uri, _ = urlPath(string(line))
		}
	}
	for _, a := range c.addrs {
		if a.index(line) >= 0 && !slices.Contains(e.targets, a.addr.String()) {
			e.targets = append(e.targets, a.addr.String())
		}
	}
}

// endEntry groups a finished serial audit entry when it lies in the window.
func (c *collector) endEntry(p string, e *auditEntry, gs *reqGroups) {
	if !e.active {
		return
	}
	e.active = false
	if e.time.IsZero() || !c.inWindow(e.time) {
		return
	}
	for _, t := range e.targets {
		gs.add(p+"\x00t\x00"+t, p, nounEntry, "in the window containing target "+t, e.start, e.client)
	}
	if e.uri != "" {
		c.scriptRequest(gs, p, e.start, e.uri, e.client, nounEntry)
	}
}

// modsecRecord holds the fields of the two JSON audit shapes:
// ModSecurity 3 (transaction.time_stamp, client_ip, request.uri) and
// ModSecurity 2 (transaction.time, remote_address; request.request_line).
type modsecRecord struct {
	Transaction struct {
		TimeStamp     string `json:"time_stamp"`
		ClientIP      string `json:"client_ip"`
		Time          string `json:"time"`
		RemoteAddress string `json:"remote_address"`
		Request       struct {
			URI string `json:"uri"`
		} `json:"request"`
	} `json:"transaction"`
	Request struct {
		RequestLine string `json:"request_line"`
	} `json:"request"`
}

func (c *collector) modsecJSON(p string, n int, line []byte, gs *reqGroups) {
	var r modsecRecord
	if json.Unmarshal(line, &r) != nil {
		return
	}
	tr := r.Transaction
	var t time.Time
	var ok bool
	if tr.TimeStamp != "" {
		t, ok = ctimeLocal(tr.TimeStamp)
	} else if tr.Time != "" {
		t, ok = accessTime([]byte("[" + tr.Time + "]"))
	}
	if !ok || !c.inWindow(t) {
		return
	}
	client := cmp.Or(tr.ClientIP, tr.RemoteAddress)
	c.modsecMatch(p, n, line, cmp.Or(tr.Request.URI, r.Request.RequestLine), client, gs)
}

// modsecError reads an error-log line of Apache, [Mon Apr 20 21:02:13.123 2026]
// … [client 198.51.100.7:5123] ModSecurity: … [uri "/x.php"], or nginx,
// 2026/04/20 21:02:13 [error] … ModSecurity: … client: 198.51.100.7, … request: "POST /x.php HTTP/1.1".
// Both write local time.
func (c *collector) modsecError(p string, n int, line []byte, gs *reqGroups) {
	var t time.Time
	var ok bool
	switch {
	case len(line) > 0 && line[0] == '[':
		if e := bytes.IndexByte(line, ']'); e > 0 {
			t, ok = ctimeLocal(string(line[1:e]))
		}
	case len(line) >= 19 && isDigit(line[0]):
		t, err := time.ParseInLocation("2006/01/02 15:04:05", string(line[:19]), time.Local)
		if err == nil && c.inWindow(t) {
			client := between(line, "client: ", ",")
			c.modsecMatch(p, n, line, cmp.Or(between(line, `[uri "`, `"`), between(line, `request: "`, `"`)), client, gs)
		}
		return
	}
	if !ok || !c.inWindow(t) {
		return
	}
	client := between(line, "[client ", "]")
	if ap, err := netip.ParseAddrPort(client); err == nil {
		client = ap.Addr().String()
	}
	c.modsecMatch(p, n, line, between(line, `[uri "`, `"`), client, gs)
}

// modsecMatch groups an in-window ModSecurity line by target and script.
func (c *collector) modsecMatch(p string, n int, line []byte, uri, client string, gs *reqGroups) {
	for _, a := range c.addrs {
		if a.index(line) >= 0 {
			t := a.addr.String()
			gs.add(p+"\x00t\x00"+t, p, nounEntry, "in the window containing target "+t, n, client)
		}
	}
	if uri != "" {
		if u, ok := urlPath(uri); ok {
			c.scriptRequest(gs, p, n, u, client, nounEntry)
		}
	}
}

// ctimeLocal parses "Mon Apr 20 21:02:13 2026" (fractional seconds allowed)
// in the host's zone, as ModSecurity and Apache write it.
func ctimeLocal(s string) (time.Time, bool) {
	t, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", strings.TrimSpace(s), time.Local)
	return t, err == nil
}

// between returns the text of line after the first start and before the
// next end, or "".
func between(line []byte, start, end string) string {
	i := bytes.Index(line, []byte(start))
	if i < 0 {
		return ""
	}
	rest := line[i+len(start):]
	j := bytes.Index(rest, []byte(end))
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}
