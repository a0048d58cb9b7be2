package notice

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/abuse-responder/abuse-responder/internal/ipscan"
	"github.com/abuse-responder/abuse-responder/internal/logtable"
	"github.com/abuse-responder/abuse-responder/internal/logtext"
)

var (
	reScanHeader    = regexp.MustCompile(`(?i)\(attacker'?s? ip\)|ip being scanned|port being scanned|scanned (?:ip|host)`)
	reKVDest        = regexp.MustCompile(`(?i)\b(?:dst|dest|destination|dst_?ip|dest_?ip|dst_?addr|daddr|dstaddr|destination_?ip|target_?ip)\s*[=:]\s*`)
	reKVPort        = regexp.MustCompile(`(?i)\b(?:dpt|dport|dst_?port|dest_?port|destination_?port|dstport)\s*[=:]\s*(\d{1,5})\b`)
	reKVProto       = regexp.MustCompile(`(?i)\b(?:proto|protocol)\s*[=:]\s*([a-z]+|\d{1,3})\b`)
	reArrow         = regexp.MustCompile(`\s*(?:-->|->|→|=>)\s*`)
	reAWSCSV        = regexp.MustCompile(`(?i)^\s*[a-z][a-z _-]*,\s*i-[0-9a-f]{8,17}\s*,`)
	reConnect       = regexp.MustCompile(`(?i)\bCONNECT\s+(\S+)`)
	reTargetLabel   = regexp.MustCompile(`(?i)\b(?:target(?:\s+(?:ip|host|server|address))?|victim(?:\s+(?:ip|host|server|address))?|attacked\s+(?:host|ip|server|system|address)|destination(?:\s+(?:host|server|address))?)\s*:\s*`)
	reNextLabel     = regexp.MustCompile(`\s{2,}[A-Za-z][A-Za-z ]{0,20}:|\s+(?:Time zone|Source(?: IP)?|Reporter|First seen|Protocol)\s*:`)
	reAgainst       = regexp.MustCompile(`(?i)\b(?:against|targeting|attacking|attacked|towards)\s+(?:(?:our|the|my|a|host|hosts|server|servers|ip|address|system|machine|honeypot|web ?server)\s+){0,3}`)
	rePortWord      = regexp.MustCompile(`(?i)^\s*(?:port|on port)\s+(\d{1,5})\b`)
	reModHostname   = regexp.MustCompile(`\[hostname "([^"]+)"\]`)
	reNginxHost     = regexp.MustCompile(`\bhost:\s*"([^"]+)"`)
	reAuditA        = regexp.MustCompile(`^\s*\[[^\]]+\]\s+\S+\s+(\S+)\s+(\d{1,5})\s+(\S+)\s+(\d{1,5})\s*$`)
	reStratum       = regexp.MustCompile(`(?i)\bstratum\+(tcp|ssl|tls)://([^\s/:"'<>]+)(?::(\d{1,5}))?`)
	reAccessLogRest = regexp.MustCompile(`^\s+\S+\s+\S+\s+\[\d{1,2}/`)
	reASNRest       = regexp.MustCompile(`^\s*\|\s*\d+\s*\|`)
)

// ownWords precede an address in a source position: the address is ours.
var ownWords = []string{"src", "source", "source ip", "source_ip", "source-ip", "client", "attacker", "attacker's ip",
	"from", "via", "origin", "confirmed on", "listening on", "srcip", "src_ip", "saddr"}

// report reads the forwarded report line by line.
func (c *collector) report(d doc) {
	scanProto, inScan := "", false
	var table *logtable.Header
	// X-ARF reports put the attacked address and port on lines of their own.
	var xarfDest *ipscan.Hit
	xarfPort := 0
	defer func() {
		if xarfDest != nil && xarfPort > 0 {
			c.add(xarfDest.Addr, xarfPort, "")
		}
	}()
	lines, lowers := d.split()
	for i, line := range lines {
		trimmed := strings.TrimLeft(line, "> \t")
		lower := lowers[i][len(line)-len(trimmed):]
		line = trimmed
		if strings.TrimSpace(line) == "" {
			table = nil // a table ends at a blank line
			continue
		}
		hasIP := ipscan.MayHold(line)
		if hasIP {
			c.ownPositions(line, lower)
		}
		if logtext.ContainsAny(lower, "scanned", "attacker") && reScanHeader.MatchString(line) {
			inScan = true
			scanProto = ""
			if m := reProtoWord.FindString(line); m != "" {
				scanProto = strings.ToLower(m)
			}
			continue
		}
		if strings.HasPrefix(lower, "port:") {
			xarfPort, _ = strconv.Atoi(strings.TrimSpace(line[len("port:"):]))
		}
		if strings.HasPrefix(lower, "destination:") {
			if h, ok := ipscan.First(line); ok {
				xarfDest = &h
			}
		}
		if !hasIP {
			if logtext.ContainsAny(lower, "dst", "dest") {
				if h := parseTableHeader(line); h != nil {
					table = h
					continue
				}
			}
			c.hostsOnly(line, lower)
			continue
		}
		if c.scanRow(line, inScan, scanProto) {
			continue
		}
		if table != nil && c.tableRow(line, table) {
			continue
		}
		if strings.Contains(line, ",i-") || strings.Contains(line, ", i-") {
			if reAWSCSV.MatchString(line) {
				c.awsCSV(line)
				continue
			}
		}
		if logtext.ContainsAny(lower, "dst", "dest", "daddr", "target_ip", "targetip") {
			c.keyValues(line, lower)
		}
		if logtext.ContainsAny(line, "->", "→", "=>") {
			c.arrows(line)
		}
		if logtext.ContainsAny(lower, "target", "victim", "attacked", "destination", "against", "towards", "attacking") {
			c.labelled(line)
		}
		c.misc(line, lower)
	}
}

// ownPositions remembers addresses in source positions: ours, never targets.
func (c *collector) ownPositions(line, lower string) {
	hits := ipscan.Hits(line)
	for _, h := range hits {
		before := strings.TrimRight(lower[max(0, h.Start-24):h.Start], " \t=:[")
		for _, w := range ownWords {
			if strings.HasSuffix(before, w) {
				c.own[h.Addr] = true
				break
			}
		}
	}
	if len(hits) > 0 && hits[0].Start == strings.IndexFunc(line, func(r rune) bool { return r != ' ' && r != '\t' }) {
		rest := line[hits[0].End:]
		// An access-log line ("<client> - - [date] …") or an "ip | asn" row
		// starts with our address.
		if reAccessLogRest.MatchString(rest) || reASNRest.MatchString(rest) {
			c.own[hits[0].Addr] = true
		}
	}
}

// scanRow reads "<ours> <scanned ip> <port>" rows of port-scan reports.
func (c *collector) scanRow(line string, inScan bool, proto string) bool {
	f := strings.Fields(line)
	if len(f) != 3 {
		return false
	}
	src, ok1 := ipscan.ParseAddr(f[0])
	dst, ok2 := ipscan.ParseAddr(f[1])
	port, err := strconv.Atoi(f[2])
	if !ok1 || !ok2 || err != nil || port < 0 || port > 65535 {
		return false
	}
	if !inScan {
		proto = ""
	}
	c.own[src] = true
	c.add(dst, port, proto)
	return true
}

func (c *collector) awsCSV(line string) {
	f := strings.Split(line, ",")
	if len(f) < 7 {
		return
	}
	dst, ok := ipscan.ParseAddr(strings.TrimSpace(f[3]))
	if !ok {
		return
	}
	port, _ := strconv.Atoi(strings.TrimSpace(f[6]))
	c.add(dst, port, logtext.Proto(f[4]))
}

// keyValues reads DST=, dst=, dport=, PROTO= style fields (iptables, UFW,
// flow exports).
func (c *collector) keyValues(line, lower string) {
	var dsts []int
	port, proto := 0, ""
	for _, kv := range logtext.LabelPairs(lower) {
		switch kv.Key {
		case "dst", "dest", "destination", "dstip", "dst_ip", "destip", "dest_ip", "dstaddr", "dst_addr",
			"daddr", "destination_ip", "target_ip", "targetip":
			dsts = append(dsts, kv.Value)
		case "dpt", "dport", "dstport", "dst_port", "destport", "dest_port", "destination_port":
			if port == 0 {
				port, _ = strconv.Atoi(logtext.LeadingDigits(line[kv.Value:]))
			}
		case "proto", "protocol":
			if proto == "" {
				proto = logtext.Proto(logtext.LeadingWord(lower[kv.Value:]))
			}
		}
	}
	for _, at := range dsts {
		h, ok := ipscan.At(line, at)
		if !ok {
			continue
		}
		p := port
		if h.Port > 0 {
			p = h.Port
		}
		c.add(h.Addr, p, proto)
	}
}

// arrows reads "<ours>:<port> -> <target>:<port>" flows.
func (c *collector) arrows(line string) {
	proto, protoRead := "", false
	for _, loc := range reArrow.FindAllStringIndex(line, -1) {
		right, ok := ipscan.At(line, loc[1])
		if !ok || right.Start != 0 {
			continue
		}
		from := max(0, loc[0]-ipscan.Window)
		hits := ipscan.Hits(line[from:loc[0]])
		if len(hits) > 0 && from+hits[len(hits)-1].End == loc[0] {
			c.own[hits[len(hits)-1].Addr] = true
		}
		if !protoRead { // once per line, not once per arrow
			proto, protoRead = logtext.LineProto(line), true
		}
		c.add(right.Addr, max(right.Port, 0), proto)
	}
}

// labelled reads "Target: shop.example.org (203.0.113.44:443)" and its
// kin, and "attacks against 203.0.113.5 port 22".
func (c *collector) labelled(line string) {
	for _, loc := range reTargetLabel.FindAllStringIndex(line, -1) {
		seg := line[loc[1]:min(len(line), loc[1]+160)]
		if end := reNextLabel.FindStringIndex(seg); end != nil {
			seg = seg[:end[0]]
		}
		if f := strings.Fields(seg); len(f) > 0 {
			c.addHost(f[0])
		}
		for _, h := range ipscan.Hits(seg) {
			p := max(h.Port, 0)
			if m := rePortWord.FindStringSubmatch(seg[h.End:]); m != nil && p == 0 {
				p, _ = strconv.Atoi(m[1])
			}
			c.add(h.Addr, p, logtext.LineProto(seg))
		}
	}
	for _, loc := range reAgainst.FindAllStringIndex(line, -1) {
		h, ok := ipscan.At(line, loc[1])
		if !ok || h.Start != 0 {
			continue
		}
		rest := line[loc[1]+h.End:]
		p := max(h.Port, 0)
		if m := rePortWord.FindStringSubmatch(rest); m != nil && p == 0 {
			p, _ = strconv.Atoi(m[1])
		}
		c.add(h.Addr, p, "")
	}
}

// misc reads the rarer shapes: CONNECT destinations of an open proxy,
// ModSecurity and nginx host names, the audit log's A line, mining pools.
func (c *collector) misc(line, lower string) {
	c.hostsOnly(line, lower)
	if line[0] == '[' {
		if m := reAuditA.FindStringSubmatch(line); m != nil {
			src, ok1 := ipscan.ParseAddr(m[1])
			dst, ok2 := ipscan.ParseAddr(m[3])
			if ok1 && ok2 {
				c.own[src] = true
				p, _ := strconv.Atoi(m[4])
				c.add(dst, p, "")
			}
		}
	}
}

// hostsOnly reads what may name a host with or without an address.
func (c *collector) hostsOnly(line, lower string) {
	if strings.Contains(lower, "target") || strings.Contains(lower, "victim") {
		if !ipscan.MayHold(line) {
			c.labelled(line)
		}
	}
	if !logtext.ContainsAny(lower, "connect ", "hostname \"", "host:", "stratum+") {
		return
	}
	if !strings.Contains(lower, "connect ") {
		// no CONNECT request on this line
	} else if m := reConnect.FindStringSubmatch(line); m != nil {
		if h, ok := ipscan.First(m[1]); ok && h.Start == 0 {
			c.add(h.Addr, max(h.Port, 0), "")
		} else if host, _, found := strings.Cut(m[1], ":"); found {
			c.addHost(host)
		}
	}
	for _, rule := range []struct {
		literal string
		re      *regexp.Regexp
	}{{`[hostname "`, reModHostname}, {`host:`, reNginxHost}} {
		if !strings.Contains(lower, rule.literal) {
			continue
		}
		for _, m := range rule.re.FindAllStringSubmatch(line, -1) {
			if h, ok := ipscan.First(m[1]); ok && h.Start == 0 {
				c.add(h.Addr, max(h.Port, 0), "")
			} else {
				host, _, _ := strings.Cut(m[1], ":")
				c.addHost(host)
			}
		}
	}
	if !strings.Contains(lower, "stratum+") {
		return
	}
	for _, m := range reStratum.FindAllStringSubmatch(line, -1) {
		proto := ""
		if strings.EqualFold(m[1], "tcp") {
			proto = "tcp"
		}
		p, _ := strconv.Atoi(m[3])
		if a, ok := ipscan.ParseAddr(m[2]); ok {
			c.add(a, p, proto)
		} else {
			c.addHost(m[2])
		}
	}
}

var (
	reReceived   = regexp.MustCompile(`(?im)^[ \t>]*Received:[ \t]*(.*(?:\n[ \t]+.*)*)`)
	reReceivedBy = regexp.MustCompile(`(?i)\bby\s+([A-Za-z0-9.-]+)`)
)

// received takes the MX our instance delivered spam to: the "by" host of
// the quoted Received header whose "from" part names one of our addresses,
// else of the lowest (earliest) Received header.
func (c *collector) received(text string) {
	matches := reReceived.FindAllStringSubmatch(text, -1)
	if len(matches) == 0 {
		return
	}
	pick := ""
	for _, m := range matches {
		fromPart, _, _ := strings.Cut(m[1], " by ")
		byHost := firstSubmatch(reReceivedBy, m[1])
		for _, h := range ipscan.Hits(fromPart) {
			if c.own[h.Addr] && byHost != "" {
				pick = byHost
			}
		}
		if pick != "" {
			break
		}
	}
	if pick == "" {
		pick = firstSubmatch(reReceivedBy, matches[len(matches)-1][1])
	}
	c.addHost(pick)
}
