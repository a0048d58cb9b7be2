// Package evidence reads the reporter's forwarded log extract of an abuse
// notice (abuse.Notice.Evidence, untrusted text) into events, one per log
// line it recognises, and groups them into short human summaries such as
// "37 SSH login failures against 203.0.113.5:22, 04:12–04:19 UTC".
//
// It only reads: nothing in the extract is acted on. Lines it does not
// recognise are counted, never errors, and every rule reads a line a
// bounded number of times, so a hostile extract costs linear time.
package evidence

import (
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/internal/logtable"
	"github.com/abuse-responder/abuse-responder/internal/logtext"
	"github.com/abuse-responder/abuse-responder/internal/logtime"
)

// Event is one log line (or one aggregated report line) of the extract.
type Event struct {
	Line     int        `json:"line"`      // 1-based line in the extract
	Family   string     `json:"family"`    // sshd, fail2ban, access, nginx-error, apache-error, modsec, modsec-audit, firewall, portscan, flow, table, aws-csv, xarf, vuln-row, received
	What     string     `json:"what"`      // ssh-login-failure, http-request, waf-block, blocked-packet, port-probe, connection, dos, spam-delivery, …
	Time     *time.Time `json:"time"`      // UTC; nil when the line has none
	Source   netip.Addr `json:"source"`    // the address in the source position (ours, per the reporter); zero when absent
	Dest     netip.Addr `json:"dest"`      // the third party; zero when absent
	DestHost string     `json:"dest_host"` // a DNS name of the target when the line gives one
	Port     uint16     `json:"port"`      // destination port, 0 when unknown
	Protocol string     `json:"protocol"`  // "tcp"/"udp" only where the text names it, else ""
	Count    int        `json:"count"`     // 1 for a line; n for "banned after n attempts" style aggregates
	Detail   string     `json:"detail"`    // short: the request line, the ModSecurity msg and id, the user name tried
	// ViaForwardedHeader: our address appears on this line only as an
	// X-Forwarded-For / X-Real-IP / "forwarded for" value, something the
	// reporter could not verify (feeds the likely-spoofed verdict).
	ViaForwardedHeader bool `json:"via_forwarded_header,omitempty"`
}

// Summary groups events by (What, Dest, Port, Protocol).
type Summary struct {
	What     string     `json:"what"`
	Dest     netip.Addr `json:"dest"`
	DestHost string     `json:"dest_host"` // the first host name among the group's events
	Port     uint16     `json:"port"`
	Protocol string     `json:"protocol"`
	Count    int        `json:"count"` // sum of event counts
	First    *time.Time `json:"first"` // earliest event time, nil when no event has one
	Last     *time.Time `json:"last"`
	Text     string     `json:"text"` // one line for people, see SummaryText
}

// Result is what Parse finds in an extract.
type Result struct {
	Events    []Event   `json:"events"`
	Summaries []Summary `json:"summaries"` // in order of first appearance
	Lines     int       `json:"lines"`     // non-blank lines in the extract
	Unparsed  int       `json:"unparsed"`  // non-blank lines that gave no event (prose, headers)
}

// Parse reads the extract. ref is the notice mail's Date, which gives
// syslog lines their year (FORMATS.md §8). A zone the report states
// anywhere in the text applies to lines without one. Parse never fails:
// unknown lines are counted in Unparsed. It runs in time linear in the
// input.
func Parse(text string, ref time.Time) Result {
	p := &parser{ref: ref, zone: logtime.StatedZone(text)}
	lines := strings.Split(text, "\n")
	p.covered = make([]bool, len(lines))
	res := Result{}
	for i := 0; i < len(lines); i++ {
		line := unquote(strings.TrimSuffix(lines[i], "\r"))
		if strings.TrimSpace(line) == "" {
			p.blank()
			continue
		}
		res.Lines++
		if i < p.skip {
			continue // a continuation line an earlier event consumed
		}
		p.line(lines, i, strings.TrimLeft(line, " \t"))
	}
	p.flushXARF()
	covered := 0
	for _, c := range p.covered {
		if c {
			covered++
		}
	}
	res.Unparsed = res.Lines - covered
	// Blocks (X-ARF) are emitted when they end, after the lines inside them.
	sort.SliceStable(p.events, func(a, b int) bool { return p.events[a].Line < p.events[b].Line })
	res.Events = p.events
	if res.Events == nil {
		res.Events = []Event{}
	}
	res.Summaries = Summarize(res.Events)
	return res
}

// unquote strips the "> " that mail clients put before quoted lines.
func unquote(s string) string {
	for strings.HasPrefix(s, ">") {
		s = strings.TrimPrefix(s[1:], " ")
	}
	return s
}

// parser holds what earlier lines said about later ones: the target a
// report names once, a port-scan or table header, an X-ARF block.
type parser struct {
	ref     time.Time
	zone    *logtime.Zone
	events  []Event
	covered []bool // lines that gave an event or are part of one

	target  target           // from a "Target: host (ip:port)" line; applies to server logs after it
	scan    scanState        // inside a port-scan report's rows
	table   *logtable.Header // inside a Src IP / Dst IP table
	xarf    xarfBlock        // the current run of "Key: value" lines
	pending int              // index+1 of a modsec-audit event waiting for its request line, or 0
	skip    int              // lines before this index were consumed by a multi-line event
}

// target is the reporter's own server, as the report names it.
type target struct {
	addr netip.Addr
	host string
	port uint16
}

// blank ends the blocks that a blank line ends: tables, scan rows, X-ARF.
func (p *parser) blank() {
	p.table = nil
	p.scan = scanState{}
	p.flushXARF()
}

// line reads one non-blank line (unquoted, left-trimmed). i is its index.
func (p *parser) line(lines []string, i int, line string) {
	lower := logtext.Lower(line)
	p.xarfLine(i, line, lower)
	if p.pending > 0 && p.auditDetail(i, line, lower) {
		return
	}
	ev, ok := p.event(lines, i, line, lower)
	if !ok {
		p.context(line, lower)
		return
	}
	if ev.Count == 0 {
		ev.Count = 1
	}
	ev.Line = i + 1
	ev.Detail = short(ev.Detail)
	p.covered[i] = true
	p.events = append(p.events, ev)
	if ev.Family == "modsec-audit" {
		p.pending = len(p.events)
	}
}

// event tries the line families in turn, the most distinctive first.
func (p *parser) event(lines []string, i int, line, lower string) (Event, bool) {
	switch {
	case strings.HasPrefix(lower, "received:"):
		return p.received(lines, i, line)
	case strings.Contains(line, ",i-") || strings.Contains(line, ", i-"):
		if ev, ok := p.awsCSV(line); ok {
			return ev, true
		}
	}
	if line[0] == '[' {
		if ev, ok := p.auditA(line); ok {
			return ev, true
		}
	}
	if strings.Contains(lower, "modsecurity:") {
		return p.modsec(line, lower)
	}
	if strings.Contains(lower, "sshd[") || strings.Contains(lower, "sshd:") {
		if ev, ok := p.sshd(line, lower); ok {
			return ev, true
		}
	}
	if logtext.ContainsAny(lower, "fail2ban", "detected abuse from the ip address") {
		if ev, ok := p.fail2ban(line, lower); ok {
			return ev, true
		}
	}
	if strings.Contains(line, "SRC=") && strings.Contains(line, "DST=") {
		return p.firewall(line, lower)
	}
	if strings.Contains(lower, "client: ") && logtext.ContainsAny(lower, ", server: ", ", request: ") {
		if ev, ok := p.nginxError(line, lower); ok {
			return ev, true
		}
	}
	if strings.Contains(lower, "[client ") {
		if ev, ok := p.apacheError(line, lower); ok {
			return ev, true
		}
	}
	if ev, ok := p.access(line, lower); ok {
		return ev, true
	}
	if strings.Contains(lower, "dst=") || strings.Contains(lower, "daddr=") {
		if ev, ok := p.flowKV(line, lower); ok {
			return ev, true
		}
	}
	if logtext.ContainsAny(line, "->", "→", "=>") {
		if ev, ok := p.arrow(line); ok {
			return ev, true
		}
	}
	if ev, ok := p.scanRow(line); ok {
		return ev, true
	}
	if p.table != nil {
		if ev, ok := p.tableRow(line); ok {
			return ev, true
		}
	}
	if strings.IndexByte(line, '|') > 0 {
		return p.vulnRow(line)
	}
	return Event{}, false
}

// context reads lines that give no event but govern later ones: a target
// statement, a port-scan header, a table header.
func (p *parser) context(line, lower string) {
	if logtext.ContainsAny(lower, "attacker", "scanned") && reScanHeader.MatchString(line) {
		p.scan = scanState{active: true, proto: protoWord(line)}
		return
	}
	if logtext.ContainsAny(lower, "dst", "dest") {
		if h := parseTableHeader(lower); h != nil {
			p.table = h
			return
		}
	}
	if strings.Contains(lower, "target") {
		p.targetLine(line)
	}
}

// timeOf reads the line's first timestamp, in the zone the report states
// when the line gives none.
func (p *parser) timeOf(s string) *time.Time {
	st, ok := logtime.Find(s)
	if !ok {
		return nil
	}
	t := st.Time(p.zone, p.ref)
	return &t
}
