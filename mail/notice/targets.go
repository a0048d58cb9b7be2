package notice

import (
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/internal/ipscan"
)

// collector gathers the third parties our instance contacted. It works by
// positive extraction: an address counts only in a position that names a
// destination (DST=, the scanned-IP column, the right of "->", Target:, a
// CONNECT). Addresses in source positions are remembered as ours and
// removed at the end, as a second guard.
type collector struct {
	own     map[netip.Addr]bool
	targets []abuse.Target
	hosts   orderedSet
}

func (c *collector) add(a netip.Addr, port int, proto string) {
	if port < 0 || port > 65535 {
		port = 0
	}
	c.targets = append(c.targets, abuse.Target{IP: a, Port: uint16(port), Protocol: proto})
}

func (c *collector) addHost(h string) {
	if h = ipscan.HostName(h); h != "" {
		c.hosts.add(h)
	}
}

func (c *collector) addOwn(s string) {
	for _, h := range ipscan.Hits(s) {
		c.own[h.Addr] = true
	}
}

// targetsOf extracts targets and target host names from AWS's bullets and
// the reporter's text; own holds the instance addresses AWS printed.
func targetsOf(aws, report doc, own map[netip.Addr]bool) ([]abuse.Target, []string) {
	c := &collector{own: map[netip.Addr]bool{}}
	for a := range own {
		c.own[a] = true
	}
	c.bullets(aws)
	c.bullets(report)
	c.report(report)
	if report.has("received:") {
		c.received(report.s)
	}
	return c.result(), c.hosts.items()
}

// result drops our own addresses, exact duplicates, and entries that a more
// specific entry for the same address covers (203.0.113.5 with no port when
// 203.0.113.5:22/tcp is known).
func (c *collector) result() []abuse.Target {
	type ipPort struct {
		ip   netip.Addr
		port uint16
	}
	type ipProto struct {
		ip    netip.Addr
		proto string
	}
	// What the more specific entries of each address cover, built in one
	// pass so that a report with many targets costs linear time.
	seen := map[abuse.Target]bool{}
	distinct := map[netip.Addr]int{}
	portHasProto := map[ipPort]bool{}  // ip:port is also known with a protocol
	protoHasPort := map[ipProto]bool{} // ip/proto is also known with a port
	var uniq []abuse.Target
	for _, t := range c.targets {
		if seen[t] || c.own[t.IP] {
			continue
		}
		seen[t] = true
		uniq = append(uniq, t)
		distinct[t.IP]++
		if t.Protocol != "" {
			portHasProto[ipPort{t.IP, t.Port}] = true
		}
		if t.Port != 0 {
			protoHasPort[ipProto{t.IP, t.Protocol}] = true
		}
	}
	out := []abuse.Target{}
	for _, t := range uniq {
		covered := false
		switch {
		case t.Port == 0 && t.Protocol == "":
			covered = distinct[t.IP] > 1
		case t.Protocol == "":
			covered = portHasProto[ipPort{t.IP, t.Port}]
		case t.Port == 0:
			covered = protoHasPort[ipProto{t.IP, t.Protocol}]
		}
		if !covered {
			out = append(out, t)
		}
	}
	return out
}

var (
	reDestIPs   = regexp.MustCompile(`(?im)^[ \t*>-]*Destination IP(?:s|\(s\)|\s+Address(?:es)?)?\s*:[ \t]*(.*)$`)
	reDestPorts = regexp.MustCompile(`(?im)^[ \t*>-]*Destination Ports?(?:\(s\))?\s*:[ \t]*(.*)$`)
	reDestURLs  = regexp.MustCompile(`(?im)^[ \t*>-]*Destination (?:URL|Host|Domain)(?:s|\(s\))?\s*:[ \t]*(.*)$`)
	rePortItem  = regexp.MustCompile(`(?i)(\d{1,5})(?:\s*/\s*(tcp|udp))?`)
	reProtoWord = regexp.MustCompile(`(?i)\b(tcp|udp)\b`)
)

// bullets reads the Gen A style "* Destination IPs/Ports/URLs:" lines.
// Every listed address gets every listed port.
func (c *collector) bullets(d doc) {
	if !d.has("destination") {
		return
	}
	text := d.lines("destination")
	var ips []ipscan.Hit
	for _, m := range reDestIPs.FindAllStringSubmatch(text, -1) {
		ips = append(ips, ipscan.Hits(m[1])...)
	}
	type portProto struct {
		port  int
		proto string
	}
	var ports []portProto
	for _, m := range reDestPorts.FindAllStringSubmatch(text, -1) {
		shared := ""
		if words := reProtoWord.FindAllString(m[1], -1); len(words) == 1 {
			shared = strings.ToLower(words[0])
		}
		for _, item := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ',' || r == ';' }) {
			pm := rePortItem.FindStringSubmatch(item)
			if pm == nil {
				continue
			}
			p, _ := strconv.Atoi(pm[1])
			proto := strings.ToLower(pm[2])
			if proto == "" {
				proto = shared
			}
			ports = append(ports, portProto{p, proto})
		}
	}
	for _, ip := range ips {
		if len(ports) == 0 {
			c.add(ip.Addr, max(ip.Port, 0), "")
		}
		for _, p := range ports {
			c.add(ip.Addr, p.port, p.proto)
		}
	}
	for _, m := range reDestURLs.FindAllStringSubmatch(text, -1) {
		for _, item := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
			c.urlTarget(item)
		}
	}
}

// urlTarget takes the host of a URL (or a bare host[:port]) a report says
// our instance reached.
func (c *collector) urlTarget(item string) {
	item = strings.Trim(item, `"'<>()[]`)
	if item == "" {
		return
	}
	if !strings.Contains(item, "://") {
		item = "x://" + item
	}
	u, err := url.Parse(item)
	if err != nil || u.Hostname() == "" {
		return
	}
	if a, ok := ipscan.ParseAddr(u.Hostname()); ok {
		p, _ := strconv.Atoi(u.Port())
		c.add(a, p, "")
		return
	}
	c.addHost(u.Hostname())
}
