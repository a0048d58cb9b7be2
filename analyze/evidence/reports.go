package evidence

import (
	"regexp"
	"strings"

	"github.com/abuse-responder/abuse-responder/internal/ipscan"
)

// xarfBlock is a run of "Key: value" lines. An X-ARF report quoted as
// text is such a block with Report-Type and Source; it gives one event.
type xarfBlock struct {
	first  int      // index of the block's first line, valid when len(lines) > 0
	lines  []int    // indexes of its lines
	fields []string // lower-case key, value, key, value… for the X-ARF keys only
}

// xarfKeys are the keys the event is built from.
var xarfKeys = map[string]bool{"report-type": true, "source": true, "port": true, "date": true,
	"destination": true, "service": true}

// xarfLine adds a "Key: value" line to the current block, or ends it.
func (p *parser) xarfLine(i int, line, lower string) {
	k := 0
	for k < len(lower) && k < 40 && (lower[k] >= 'a' && lower[k] <= 'z' || lower[k] == '-' || k > 0 && isDigit(lower[k])) {
		k++
	}
	if k == 0 || k >= len(line) || line[k] != ':' {
		p.flushXARF()
		return
	}
	if len(p.xarf.lines) == 0 {
		p.xarf.first = i
	}
	p.xarf.lines = append(p.xarf.lines, i)
	if key := lower[:k]; xarfKeys[key] {
		v := strings.TrimSpace(line[k+1:])
		p.xarf.fields = append(p.xarf.fields, key, v[:min(len(v), 300)])
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// flushXARF ends the current block, giving an event when it is an X-ARF
// report with a source address.
func (p *parser) flushXARF() {
	b := p.xarf
	p.xarf = xarfBlock{}
	if len(b.fields) == 0 {
		return
	}
	get := func(key string) string {
		for i := 0; i+1 < len(b.fields); i += 2 {
			if b.fields[i] == key {
				return b.fields[i+1]
			}
		}
		return ""
	}
	rt := get("report-type")
	src, ok := ipscan.ParseAddr(get("source"))
	if rt == "" || !ok {
		return
	}
	ev := Event{Line: b.first + 1, Family: "xarf", What: xarfWhat(rt), Source: src, Count: 1,
		Port: port(get("port")), Detail: short(get("service"))}
	if d := get("date"); d != "" {
		ev.Time = p.timeOf(d)
	}
	if h, ok := ipscan.First(get("destination")); ok && h.Start == 0 {
		ev.Dest = h.Addr
	}
	for _, i := range b.lines {
		p.covered[i] = true
	}
	p.events = append(p.events, ev)
}

// xarfWhat maps an X-ARF Report-Type to an event kind.
func xarfWhat(rt string) string {
	rt = strings.ToLower(strings.TrimSpace(rt))
	switch rt {
	case "portscan", "port-scan":
		return "port-probe"
	case "ddos", "dos":
		return "dos"
	case "spam":
		return "spam-delivery"
	}
	var b strings.Builder
	for i := 0; i < len(rt) && i < 40; i++ {
		if c := rt[i]; c >= 'a' && c <= 'z' || isDigit(c) || c == '-' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

var reVulnRow = regexp.MustCompile(`^(\S{1,45})[ \t]*\|[ \t]*(?:AS)?(\d{1,10})[ \t]*\|(.*)$`)

// vulnRow reads a CERT-style "ip | asn | timestamp" row; the address is ours.
func (p *parser) vulnRow(line string) (Event, bool) {
	m := reVulnRow.FindStringSubmatch(line)
	if m == nil {
		return Event{}, false
	}
	src, ok := ipscan.ParseAddr(m[1])
	if !ok {
		return Event{}, false
	}
	return Event{Family: "vuln-row", What: "vulnerable-service", Source: src, Detail: "AS" + m[2], Time: p.timeOf(m[3])}, true
}

var reReceivedBy = regexp.MustCompile(`(?i)\bby[ \t]+([A-Za-z0-9.:\[\]-]{1,255})`)

// received reads a quoted "Received: from <helo> (<rdns> [<ours>]) by <MX>
// …; <date>" header with its continuation lines: our instance delivered
// mail to the reporter's MX. A header whose from part names no address
// (an internal hop) gives no event.
func (p *parser) received(lines []string, i int, line string) (Event, bool) {
	parts := []string{line}
	next := i + 1
	for ; next < len(lines); next++ {
		c := strings.TrimPrefix(strings.TrimLeft(strings.TrimSuffix(lines[next], "\r"), ">"), " ")
		if c == "" || c[0] != ' ' && c[0] != '\t' || strings.TrimSpace(c) == "" {
			break
		}
		parts = append(parts, strings.TrimSpace(c))
	}
	header := strings.Join(parts, " ")
	fromPart, byPart, _ := strings.Cut(header, " by ")
	if byPart == "" {
		if j := strings.Index(header, "\tby "); j >= 0 {
			fromPart, byPart = header[:j], header[j+4:]
		}
	}
	hits := ipscan.Hits(fromPart)
	if len(hits) == 0 {
		return Event{}, false
	}
	ev := Event{Family: "received", What: "spam-delivery", Source: hits[len(hits)-1].Addr}
	if f := strings.Fields(fromPart); len(f) >= 3 && strings.EqualFold(f[1], "from") {
		ev.Detail = "helo " + f[2]
	}
	if m := reReceivedBy.FindStringSubmatch("by " + byPart); m != nil && byPart != "" {
		if h, ok := ipscan.First(m[1]); ok && h.Start <= 1 {
			ev.Dest = h.Addr
		} else {
			ev.DestHost = ipscan.HostName(m[1])
		}
	}
	if j := strings.LastIndexByte(header, ';'); j >= 0 {
		ev.Time = p.timeOf(header[j+1:])
	}
	for k := i + 1; k < next; k++ {
		p.covered[k] = true
	}
	p.skip = next
	return ev, true
}
