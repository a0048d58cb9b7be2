package analyze

import (
	"fmt"
	"net/netip"
	"path"
	"strings"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/analyze/evidence"
	"github.com/abuse-responder/abuse-responder/analyze/host"
)

// decide gives the verdict from what was gathered. The order matters: our
// own records of the traffic beat everything; a link the reporter could
// not check beats "not reproduced" because it explains the silence.
func decide(a *Analysis) (Verdict, string) {
	if why := trafficSeen(a); why != "" {
		return Confirmed, why
	}
	if why := onlyForwardedLink(a.Evidence); why != "" {
		return LikelySpoofed, why
	}
	for _, t := range a.Telemetry.FlowLogs {
		if t.Covered {
			return NotReproduced, fmt.Sprintf("the flow logs in %s cover the window (%d records) and show no traffic to the targets", t.LogGroup, t.Records)
		}
	}
	switch {
	case a.Host.Collected && len(a.Telemetry.FlowLogs) == 0:
		return Inconclusive, "the host shows nothing aimed at the targets and no flow logs cover the window"
	case a.Host.Collected:
		return Inconclusive, "the flow logs do not cover the window and the host shows nothing aimed at the targets"
	}
	return Inconclusive, "no telemetry: neither flow logs nor host evidence were available"
}

// trafficSeen names our own record of traffic to a target, or "".
func trafficSeen(a *Analysis) string {
	for _, t := range a.Telemetry.FlowLogs {
		for _, f := range t.Flows {
			if f.Accepted+f.Rejected > 0 {
				return fmt.Sprintf("the flow logs show %d accepted and %d rejected records to %s port %d",
					f.Accepted, f.Rejected, f.Target, f.Port)
			}
		}
	}
	for _, f := range a.Host.Findings {
		if f.Listen != "" {
			continue // a listener is what others reach, not traffic to a target
		}
		switch f.Kind {
		case "socket":
			return "the host has a connection to a target: " + f.Reason
		case "script":
			if namesTarget(f.Reason, a.Targets, a.TargetHosts) {
				return "a script on the host is aimed at a target: " + f.Path
			}
		}
	}
	return ""
}

// namesTarget reports whether a host finding's reason quotes a target
// address; the host package writes the matched address into its reason.
func namesTarget(reason string, targets []abuse.Target, hosts []string) bool {
	for _, t := range targets {
		if containsWord(reason, t.IP.String()) {
			return true
		}
	}
	for _, h := range hosts {
		if containsWord(strings.ToLower(reason), strings.ToLower(h)) {
			return true
		}
	}
	return false
}

// containsWord finds s in text with no address character on either side,
// so that 203.0.113.8 is not found in 203.0.113.88.
func containsWord(text, s string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], s)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(s)
		if (start == 0 || !addrByte(text[start-1])) && wordEnd(text, end) {
			return true
		}
		i = start + 1
	}
}

// wordEnd reports whether an address ending at end stops there; a full
// stop that ends a sentence does not continue it.
func wordEnd(text string, end int) bool {
	if end == len(text) || !addrByte(text[end]) {
		return true
	}
	return text[end] == '.' && (end+1 == len(text) || !addrByte(text[end+1]))
}

// addrByte is a byte that may continue an address or a host name.
func addrByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == ':' || c == '-'
}

// onlyForwardedLink explains a likely-spoofed report: every line that ties
// the activity to us does so through a forwarded-for header.
func onlyForwardedLink(ev evidence.Result) string {
	via, direct := 0, 0
	for _, e := range ev.Events {
		if e.ViaForwardedHeader {
			via++
		} else if e.Source.IsValid() {
			direct++
		}
	}
	if via == 0 || direct > 0 {
		return ""
	}
	return fmt.Sprintf("all %d report lines name our address only in an X-Forwarded-For style header, which the reporter could not verify", via)
}

// findCause picks the likeliest cause from the host findings, falling back
// on what the abuse type implies.
func findCause(findings []host.Finding, t abuse.Type) Cause {
	// Listeners (the socket or the proxy process others reach) are also
	// kept apart. A listening socket is no connection to a target, so it
	// leaves the socket kind; a listening proxy process stays a process.
	byKind := map[string][]host.Finding{}
	var listening []host.Finding
	for _, f := range findings {
		if f.Listen != "" {
			listening = append(listening, f)
			if f.Kind == "socket" {
				continue
			}
		}
		byKind[f.Kind] = append(byKind[f.Kind], f)
	}
	// On an open-proxy or vulnerability notice the reporter reached our
	// port, so what listens there is the cause. A flagged script still
	// wins: it is how someone got in, and the listener becomes support.
	exposed := (t == abuse.TypeOpenProxy || t == abuse.TypeVulnerability) && len(listening) > 0
	var c Cause
	switch {
	case len(byKind["script"]) > 0:
		s := byKind["script"][0]
		c = Cause{Kind: "compromised-web-app", Path: s.Path,
			Text: fmt.Sprintf("a compromised web application: the script %s (%s)", s.Path, s.Reason)}
		// The script's own line is in Text; the support is what drove it.
		for _, r := range byKind["request"] {
			if strings.Contains(r.Reason, scriptURL(s.Path)) || strings.Contains(r.Reason, s.Path) {
				c.Support = append(c.Support, fmt.Sprintf("%s:%d: %s", r.Path, r.Line, r.Reason))
			}
		}
	case exposed:
		c = listenerCause(listening, t)
	case len(byKind["process"]) > 0:
		p := byKind["process"][0]
		kind := "attack-tool"
		switch {
		case t == abuse.TypeCryptoMining:
			kind = "miner"
		case p.Listen != "": // proxy software others reach: it relays, it does not attack
			kind = "open-proxy"
		case strings.Contains(strings.ToLower(p.Reason), "min"):
			kind = "miner"
		}
		c = Cause{Kind: kind, Path: p.Path, Text: fmt.Sprintf("a process on the host: %s (pid %d, %s)", p.Path, p.PID, p.Reason)}
		c.Support = append(c.Support, p.Reason)
	case len(byKind["socket"]) > 0:
		s := byKind["socket"][0]
		c = Cause{Kind: "process", Path: s.Path, Text: fmt.Sprintf("the process %s (pid %d) holds connections to the targets", s.Path, s.PID)}
		c.Support = append(c.Support, s.Reason)
	case len(byKind["cron"]) > 0:
		j := byKind["cron"][0]
		c = Cause{Kind: "scheduled-job", Path: j.Path, Text: fmt.Sprintf("a scheduled job: %s line %d (%s)", j.Path, j.Line, j.Reason)}
	case t == abuse.TypeOpenProxy:
		c = Cause{Kind: "open-proxy", Text: "an open proxy on the instance, by the report; no file on the host was found at fault"}
	case t == abuse.TypeVulnerability:
		c = Cause{Kind: "exposed-service", Text: "a service exposed to the internet, by the report"}
	default:
		c = Cause{Kind: "unknown", Text: "no cause found on the host"}
	}
	if exposed && c.Kind == "compromised-web-app" {
		for _, f := range listening {
			c.Support = append(c.Support, f.Reason)
		}
	}
	// Persistence matters whatever the cause: it brings the abuse back.
	for _, j := range byKind["cron"] {
		if c.Kind != "scheduled-job" {
			c.Support = append(c.Support, fmt.Sprintf("%s:%d: %s", j.Path, j.Line, j.Reason))
		}
	}
	if c.Support == nil {
		c.Support = []string{}
	}
	return c
}

// listenerCause names the service others reach. A socket finding leads:
// it is on the port the report names; a proxy process found by its name
// comes next. The other listeners are support.
func listenerCause(listening []host.Finding, t abuse.Type) Cause {
	lead := listening[0]
	for _, f := range listening {
		if f.Kind == "socket" {
			lead = f
			break
		}
	}
	who := "an unknown process (its owner was not found)"
	path := ""
	if lead.PID != 0 {
		path = lead.Path
		who = fmt.Sprintf("%s (pid %d)", programName(lead.Path), lead.PID)
	}
	reach := "reachable from other hosts"
	if a, err := netip.ParseAddrPort(lead.Listen); err == nil && a.Addr().IsUnspecified() {
		reach = "reachable from anywhere"
	}
	kind, what := "exposed-service", "an exposed service"
	if t == abuse.TypeOpenProxy {
		kind, what = "open-proxy", "an open proxy"
	}
	c := Cause{Kind: kind, Path: path, Text: fmt.Sprintf("%s: %s listens on %s, %s", what, who, lead.Listen, reach)}
	for _, f := range listening {
		c.Support = append(c.Support, f.Reason)
	}
	return c
}

// programName is the base name of an executable path; describe in the
// host package gives the command line instead when the executable cannot
// be read, so only its first word counts.
func programName(p string) string {
	p = strings.TrimSuffix(p, " (deleted)")
	if f := strings.Fields(p); len(f) > 0 {
		p = f[0]
	}
	return path.Base(p)
}

// scriptURL guesses the URL path under which a web server serves a file:
// the part after a conventional document root.
func scriptURL(path string) string {
	for _, root := range []string{"/html/", "/public_html/", "/htdocs/", "/www/"} {
		if i := strings.LastIndex(path, root); i >= 0 {
			return path[i+len(root)-1:]
		}
	}
	return path
}
