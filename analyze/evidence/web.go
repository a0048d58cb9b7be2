package evidence

import (
	"net/netip"
	"regexp"
	"strings"

	"github.com/abuse-responder/abuse-responder/internal/ipscan"
	"github.com/abuse-responder/abuse-responder/internal/logtext"
)

// reAccessRest is what follows the client in an access-log line:
// identity, user, then the bracketed time "[20/Apr/2026:…".
var reAccessRest = regexp.MustCompile(`^[ \t]+\S+[ \t]+\S+[ \t]+\[\d{1,2}/`)

// access reads an Apache/nginx access-log line: "<client> - - [time]
// "GET /path HTTP/1.1" 404 …", the client being ours, optionally after a
// virtual host field ("shop.example.org:443 <client> - - …").
func (p *parser) access(line, lower string) (Event, bool) {
	client, ok := ipscan.At(line, 0)
	vhost := ""
	if !ok || !reAccessRest.MatchString(line[client.End:]) {
		sp := strings.IndexAny(line, " \t")
		if sp <= 0 || sp > 260 {
			return Event{}, false
		}
		next := sp + len(line[sp:]) - len(strings.TrimLeft(line[sp:], " \t"))
		client, ok = ipscan.At(line, next)
		if !ok || client.Start != 0 || !reAccessRest.MatchString(line[next+client.End:]) {
			return Event{}, false
		}
		vhost = line[:sp]
		client.End += next
	}
	ev := Event{Family: "access", What: "http-request", Time: p.timeOf(line), Source: client.Addr}
	rest := line[client.End:]
	if br := strings.IndexByte(rest, ']'); br >= 0 {
		if req, end, ok := quoted(rest, br); ok {
			ev.Detail = requestLine(req)
			// nginx's "main" format ends with "$http_x_forwarded_for":
			// the fourth quoted field (request, referer, agent, XFF).
			p.trailingXFF(&ev, rest[end:])
		}
	}
	lineHost := ""
	if vhost != "" {
		host, portText, _ := strings.Cut(vhost, ":")
		if a, ok := ipscan.ParseAddr(host); ok {
			ev.Dest = a
		} else if lineHost = ipscan.HostName(host); lineHost != "" {
			ev.DestHost = lineHost
		}
		ev.Port = port(portText)
	}
	p.forwarded(&ev, line, lower)
	p.serverTarget(&ev, lineHost)
	return ev, true
}

// trailingXFF reads the X-Forwarded-For field that nginx's default format
// puts after the referer and the user agent.
func (p *parser) trailingXFF(ev *Event, rest string) {
	i := 0
	for n := 0; n < 3; n++ {
		s, end, ok := quoted(rest, i)
		if !ok {
			return
		}
		i = end
		if n == 2 {
			first, _, _ := strings.Cut(s, ",")
			if a, ok := ipscan.ParseAddr(strings.TrimSpace(first)); ok {
				setForwarded(ev, a)
			}
		}
	}
}

// xffLabels introduce a forwarded-for value: a header the client wrote,
// which the reporter could not verify.
var xffLabels = []string{"x-forwarded-for", "x_forwarded_for", "forwarded-for", "forwarded for", "x-real-ip", "x_real_ip", "xff", "forwarded: for", "for="}

// forwarded looks for a labelled forwarded-for address on the line.
func (p *parser) forwarded(ev *Event, line, lower string) {
	if !logtext.ContainsAny(lower, "forward", "real-ip", "real_ip", "xff", "for=") {
		return
	}
	for _, label := range xffLabels {
		i := strings.Index(lower, label)
		if i < 0 {
			continue
		}
		j := i + len(label)
		for j < len(line) && strings.IndexByte(` :="'[`, line[j]) >= 0 {
			j++
		}
		if h, ok := ipscan.At(line, j); ok {
			setForwarded(ev, h.Addr)
			return
		}
	}
}

// setForwarded makes the forwarded-for address the event's source: the
// reporter attributes the request to it. The direct client, if it differs,
// goes into Detail so that people still see it.
func setForwarded(ev *Event, a netip.Addr) {
	if a == ev.Source {
		return
	}
	if ev.Source.IsValid() {
		ev.Detail += " [direct client " + ev.Source.String() + "]"
	}
	ev.Source, ev.ViaForwardedHeader = a, true
}

var reNginxHost = regexp.MustCompile(`\bhost: "([^"]{1,300})"`)

// nginxError reads "… client: <ours>, server: x, request: "GET …", host:
// "<target>"".
func (p *parser) nginxError(line, lower string) (Event, bool) {
	src := addrAfter(line, lower, "client: ")
	if !src.IsValid() {
		return Event{}, false
	}
	ev := Event{Family: "nginx-error", What: "http-request", Time: p.timeOf(line), Source: src}
	if i := strings.Index(lower, "request: \""); i >= 0 {
		if req, _, ok := quoted(line, i); ok {
			ev.Detail = requestLine(req)
		}
	}
	lineHost := ""
	if strings.Contains(lower, "host: \"") {
		if m := reNginxHost.FindStringSubmatch(line); m != nil {
			lineHost = p.hostField(&ev, m[1])
		}
	}
	p.forwarded(&ev, line, lower)
	p.serverTarget(&ev, lineHost)
	return ev, true
}

// hostField reads a host or host:port the line names as the target (a
// Host header, a ModSecurity hostname): an address goes to Dest, a name to
// DestHost, which it returns.
func (p *parser) hostField(ev *Event, v string) string {
	if h, ok := ipscan.First(v); ok && h.Start == 0 {
		ev.Dest, ev.Port = h.Addr, hitPort(h)
		return ""
	}
	host, portText, _ := strings.Cut(v, ":")
	ev.DestHost = ipscan.HostName(host)
	ev.Port = port(portText)
	return ev.DestHost
}

// apacheError reads "[time] [error] [client <ours>] message".
func (p *parser) apacheError(line, lower string) (Event, bool) {
	src := addrAfter(line, lower, "[client ")
	if !src.IsValid() {
		return Event{}, false
	}
	ev := Event{Family: "apache-error", What: "http-request", Time: p.timeOf(line), Source: src}
	i := strings.Index(lower, "[client ")
	if end := strings.IndexByte(line[i:], ']'); end >= 0 {
		msg := strings.TrimSpace(line[i+end+1:])
		if j := strings.Index(msg, ", referer:"); j >= 0 {
			msg = msg[:j]
		}
		if reAHCode.MatchString(msg) {
			msg = strings.TrimSpace(msg[strings.IndexByte(msg, ':')+1:])
		}
		ev.Detail = msg
	}
	p.forwarded(&ev, line, lower)
	p.serverTarget(&ev, "")
	return ev, true
}

var reAHCode = regexp.MustCompile(`^AH\d{5}:`)

var (
	reModID       = regexp.MustCompile(`\[id "(\d{1,12})"\]`)
	reModMsg      = regexp.MustCompile(`\[msg "([^"]{0,400})"\]`)
	reModHostname = regexp.MustCompile(`\[hostname "([^"]{1,300})"\]`)
)

// modsec reads a ModSecurity error-log line: "[client <ours>] ModSecurity:
// … [id "942100"] [msg "…"] [hostname "<target>"]".
func (p *parser) modsec(line, lower string) (Event, bool) {
	ev := Event{Family: "modsec", What: "waf-alert", Time: p.timeOf(line)}
	if strings.Contains(lower, "access denied") {
		ev.What = "waf-block"
	}
	ev.Source = addrAfter(line, lower, "[client ")
	if !ev.Source.IsValid() {
		ev.Source = addrAfter(line, lower, "client: ")
	}
	msg, id := "", ""
	if m := reModMsg.FindStringSubmatch(line); m != nil {
		msg = m[1]
	}
	if m := reModID.FindStringSubmatch(line); m != nil {
		id = m[1]
	}
	switch {
	case msg != "" && id != "":
		ev.Detail = msg + " [id " + id + "]"
	case msg != "":
		ev.Detail = msg
	case id != "":
		ev.Detail = "ModSecurity rule " + id
	}
	lineHost := ""
	if m := reModHostname.FindStringSubmatch(line); m != nil {
		lineHost = p.hostField(&ev, m[1])
	}
	p.forwarded(&ev, line, lower)
	p.serverTarget(&ev, lineHost)
	return ev, true
}

// reAuditA is the A section line of a ModSecurity audit log:
// "[29/Dec/2008:23:12:29 +0100] <id> <client ip> <port> <server ip> <port>".
var reAuditA = regexp.MustCompile(`^\[[^\]]{1,64}\][ \t]+\S+[ \t]+(\S+)[ \t]+(\d{1,5})[ \t]+(\S+)[ \t]+(\d{1,5})[ \t]*$`)

func (p *parser) auditA(line string) (Event, bool) {
	m := reAuditA.FindStringSubmatch(line)
	if m == nil {
		return Event{}, false
	}
	src, ok1 := ipscan.ParseAddr(m[1])
	dst, ok2 := ipscan.ParseAddr(m[3])
	if !ok1 || !ok2 {
		return Event{}, false
	}
	return Event{Family: "modsec-audit", What: "http-request", Time: p.timeOf(line), Source: src, Dest: dst, Port: port(m[4])}, true
}

var (
	reRequestLine = regexp.MustCompile(`^(?:GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE|PROPFIND)[ \t]+\S+(?:[ \t]+HTTP/\d(?:\.\d)?)?$`)
	reAuditMarker = regexp.MustCompile(`^--[0-9A-Za-z]{1,32}-([A-Z])--$`)
)

// auditDetail completes the last modsec-audit event from its B section: the
// request line becomes its Detail, the Host header its DestHost. It reports
// whether the line was used.
func (p *parser) auditDetail(i int, line, lower string) bool {
	ev := &p.events[p.pending-1]
	trimmed := strings.TrimSpace(line)
	if m := reAuditMarker.FindStringSubmatch(trimmed); m != nil {
		if m[1] != "B" {
			p.pending = 0
		}
		return false
	}
	switch {
	case ev.Detail == "" && reRequestLine.MatchString(trimmed):
		ev.Detail = short(requestLine(trimmed))
	case ev.DestHost == "" && strings.HasPrefix(lower, "host:"):
		host, _, _ := strings.Cut(strings.TrimSpace(line[len("host:"):]), ":")
		if ev.DestHost = ipscan.HostName(host); ev.DestHost == "" {
			return false
		}
	default:
		return false
	}
	p.covered[i] = true
	return true
}
