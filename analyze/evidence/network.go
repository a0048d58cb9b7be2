package evidence

import (
	"regexp"
	"strings"

	"github.com/abuse-responder/abuse-responder/internal/ipscan"
	"github.com/abuse-responder/abuse-responder/internal/logtext"
)

// packet holds the fields that firewall and flow-export lines share.
type packet struct {
	src, dst   ipscan.Hit
	port       uint16
	proto      string
	hasSrc     bool
	hasDstKey  bool
	hasDstAddr bool
}

// readPacket reads SRC=/DST=/PROTO=/DPT= and their lower-case kin. The first
// value of each key counts.
func readPacket(line, lower string) packet {
	var pk packet
	protoSeen := false
	for _, kv := range logtext.Pairs(lower) {
		switch kv.Key {
		case "src", "source", "srcip", "src_ip", "saddr", "srcaddr", "src_addr":
			if !pk.hasSrc {
				pk.src, pk.hasSrc = ipscan.At(line, kv.Value)
			}
		case "dst", "dest", "destination", "dstip", "dst_ip", "destip", "dest_ip", "daddr", "dstaddr", "dst_addr":
			if !pk.hasDstKey {
				pk.hasDstKey = true
				pk.dst, pk.hasDstAddr = ipscan.At(line, kv.Value)
			}
		case "dpt", "dport", "dstport", "dst_port", "destport", "dest_port", "destination_port":
			if pk.port == 0 {
				pk.port = port(logtext.LeadingDigits(line[kv.Value:]))
			}
		case "proto", "protocol":
			if !protoSeen {
				protoSeen = true
				pk.proto = logtext.Proto(logtext.LeadingWord(lower[kv.Value:]))
			}
		}
	}
	if pk.port == 0 && pk.hasDstAddr {
		pk.port = hitPort(pk.dst)
	}
	return pk
}

// firewall reads an iptables or UFW kernel line ("[UFW BLOCK] … SRC=<ours>
// DST=<target> … PROTO=TCP SPT=51638 DPT=2106").
func (p *parser) firewall(line, lower string) (Event, bool) {
	pk := readPacket(line, lower)
	ev := Event{Family: "firewall", What: "packet", Time: p.timeOf(line), Port: pk.port, Protocol: pk.proto}
	if logtext.ContainsAny(lower, "block", "drop", "reject", "deny", "denied") {
		ev.What = "blocked-packet"
	}
	if pk.hasSrc {
		ev.Source = pk.src.Addr
	}
	if pk.hasDstAddr {
		ev.Dest = pk.dst.Addr
	}
	return ev, true
}

// flowKV reads a flow export's lower-case key=value line ("src=<ours>
// dst=<target> proto=UDP dport=80").
func (p *parser) flowKV(line, lower string) (Event, bool) {
	pk := readPacket(line, lower)
	if !pk.hasDstKey || !pk.hasSrc && !pk.hasDstAddr {
		return Event{}, false
	}
	ev := Event{Family: "flow", What: "connection", Time: p.timeOf(line), Port: pk.port, Protocol: pk.proto}
	if pk.hasSrc {
		ev.Source = pk.src.Addr
	}
	if pk.hasDstAddr {
		ev.Dest = pk.dst.Addr
	}
	return ev, true
}

var reArrow = regexp.MustCompile(`[ \t]*(?:-->|->|→|=>)[ \t]*`)

// arrow reads the first "<ours>:<port> -> <target>:<port>" flow on the line.
func (p *parser) arrow(line string) (Event, bool) {
	for from := 0; from < len(line); {
		loc := reArrow.FindStringIndex(line[from:])
		if loc == nil {
			break
		}
		l, r := from+loc[0], from+loc[1]
		from = r
		right, ok := ipscan.At(line, r)
		if !ok {
			continue
		}
		lo := max(0, l-ipscan.Window)
		hits := ipscan.Hits(line[lo:l])
		if len(hits) == 0 || lo+hits[len(hits)-1].End != l {
			continue
		}
		return Event{Family: "flow", What: "connection", Time: p.timeOf(line), Source: hits[len(hits)-1].Addr,
			Dest: right.Addr, Port: hitPort(right), Protocol: logtext.LineProto(line)}, true
	}
	return Event{}, false
}

// scanState says whether the lines are rows of a port-scan report and the
// protocol its header names.
type scanState struct {
	active bool
	proto  string
}

var reScanHeader = regexp.MustCompile(`(?i)\(attacker'?s? ip\)|ip being scanned|port being scanned|scanned (?:ip|host)`)

// scanRow reads "<ours> <scanned ip> <port>" rows, optionally after a
// timestamp. Outside a scan report's header the protocol is unknown.
func (p *parser) scanRow(line string) (Event, bool) {
	if len(line) > 200 {
		return Event{}, false // rows are short; do not split a huge line
	}
	f := strings.Fields(line)
	if len(f) < 3 || len(f) > 8 {
		return Event{}, false
	}
	n := len(f)
	src, ok1 := ipscan.ParseAddr(f[n-3])
	dst, ok2 := ipscan.ParseAddr(f[n-2])
	pt := port(f[n-1])
	if !ok1 || !ok2 || pt == 0 {
		return Event{}, false
	}
	ev := Event{Family: "portscan", What: "port-probe", Source: src, Dest: dst, Port: pt}
	if n > 3 {
		// Only a timestamp may come before the three columns.
		head := line[:strings.Index(line, f[n-3])]
		ev.Time = p.timeOf(head)
		if ev.Time == nil {
			return Event{}, false
		}
	}
	if p.scan.active {
		ev.Protocol = p.scan.proto
	}
	return ev, true
}

// awsCSV reads AWS's own detection rows: "DOS,i-…,2017-01-01 12:00:00
// PDT,<target>,TCP,*,80,us-east-1" (type, instance, time, target, proto,
// sport, dport, region). The instance, not an address, is the source.
func (p *parser) awsCSV(line string) (Event, bool) {
	if !reAWSCSV.MatchString(line) {
		return Event{}, false
	}
	f := strings.Split(line, ",")
	if len(f) < 7 {
		return Event{}, false
	}
	ev := Event{Family: "aws-csv", What: csvWhat(f[0]), Detail: strings.TrimSpace(f[1]), Time: p.timeOf(f[2]),
		Protocol: logtext.Proto(f[4]), Port: port(f[6])}
	ev.Dest, _ = ipscan.ParseAddr(strings.TrimSpace(f[3]))
	return ev, true
}

var reAWSCSV = regexp.MustCompile(`(?i)^[a-z][a-z _-]{0,30},\s*i-[0-9a-f]{8,17}\s*,`)

// csvWhat maps AWS's detection type to an event kind.
func csvWhat(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	switch strings.NewReplacer(" ", "", "_", "", "-", "").Replace(t) {
	case "dos", "ddos":
		return "dos"
	case "portscan", "portscanning":
		return "port-probe"
	}
	return strings.NewReplacer(" ", "-", "_", "-").Replace(t)
}
