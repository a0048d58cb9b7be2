package cloud

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// defaultFlowLogFormat is the v2 format of a flow log created without a
// custom format; DescribeFlowLogs reports it in this form.
const defaultFlowLogFormat = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} " +
	"${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}"

// layout says at which space-separated position each field we read sits.
type layout struct {
	n                                          int // fields per record
	iface, dst, dstPort, proto, packets, bytes int
	start, end, action, status                 int
}

// parseLayout reads a flow log format such as defaultFlowLogFormat. A
// custom format works as long as it has the fields we read.
func parseLayout(format string) (layout, error) {
	pos := map[string]int{}
	fields := strings.Fields(format)
	for i, f := range fields {
		pos[strings.TrimSuffix(strings.TrimPrefix(f, "${"), "}")] = i
	}
	l := layout{n: len(fields)}
	for name, p := range map[string]*int{
		"interface-id": &l.iface, "dstaddr": &l.dst, "dstport": &l.dstPort, "protocol": &l.proto,
		"packets": &l.packets, "bytes": &l.bytes, "start": &l.start, "end": &l.end, "action": &l.action, "log-status": &l.status,
	} {
		i, ok := pos[name]
		if !ok {
			return layout{}, fmt.Errorf("flow log format %q has no ${%s}", format, name)
		}
		*p = i
	}
	return l, nil
}

var defaultLayout, _ = parseLayout(defaultFlowLogFormat)

// flowRecord is one flow log record. For NODATA and SKIPDATA records only
// the interface, times and status are set.
type flowRecord struct {
	iface          string
	dst            netip.Addr
	dstPort        int
	protocol       string
	packets, bytes int64
	start, end     time.Time
	action, status string
}

// parseRecord reads one flow log event's message.
func (l layout) parseRecord(msg string) (flowRecord, error) {
	f := strings.Fields(msg)
	if len(f) != l.n {
		return flowRecord{}, fmt.Errorf("flow record has %d fields, want %d", len(f), l.n)
	}
	r := flowRecord{iface: f[l.iface], status: f[l.status], action: f[l.action]}
	start, err1 := strconv.ParseInt(f[l.start], 10, 64)
	end, err2 := strconv.ParseInt(f[l.end], 10, 64)
	if err1 != nil || err2 != nil {
		return flowRecord{}, fmt.Errorf("flow record times %q %q: not Unix seconds", f[l.start], f[l.end])
	}
	r.start, r.end = time.Unix(start, 0).UTC(), time.Unix(end, 0).UTC()
	if r.status != "OK" {
		return r, nil
	}
	var err error
	if r.dst, err = netip.ParseAddr(f[l.dst]); err != nil {
		return flowRecord{}, fmt.Errorf("flow record dstaddr: %w", err)
	}
	r.dst = r.dst.Unmap()
	if r.dstPort, err = strconv.Atoi(f[l.dstPort]); err != nil {
		return flowRecord{}, fmt.Errorf("flow record dstport %q: %w", f[l.dstPort], err)
	}
	r.protocol = ProtocolName(f[l.proto])
	if r.packets, err = strconv.ParseInt(f[l.packets], 10, 64); err != nil {
		return flowRecord{}, fmt.Errorf("flow record packets %q: %w", f[l.packets], err)
	}
	if r.bytes, err = strconv.ParseInt(f[l.bytes], 10, 64); err != nil {
		return flowRecord{}, fmt.Errorf("flow record bytes %q: %w", f[l.bytes], err)
	}
	return r, nil
}

// FlowStats sums the records from our interfaces to one target port.
type FlowStats struct {
	Target   string     `json:"target"`
	Port     int        `json:"port"`
	Protocol string     `json:"protocol"` // "tcp", "udp", "icmp", or the IANA number
	Accepted int        `json:"accepted"` // records with action ACCEPT
	Rejected int        `json:"rejected"` // records with action REJECT (a NACL or group refused them)
	Packets  int64      `json:"packets"`
	Bytes    int64      `json:"bytes"`
	First    *time.Time `json:"first"` // the earliest record start
	Last     *time.Time `json:"last"`  // the latest record end
	Ongoing  bool       `json:"ongoing"`
}

type flowKey struct {
	target   netip.Addr
	port     int
	protocol string
}

// add counts one data record into s.
func (s *FlowStats) add(r flowRecord) {
	if r.action == "REJECT" {
		s.Rejected++
	} else {
		s.Accepted++
	}
	s.Packets += r.packets
	s.Bytes += r.bytes
	if s.First == nil || r.start.Before(*s.First) {
		t := r.start
		s.First = &t
	}
	if s.Last == nil || r.end.After(*s.Last) {
		t := r.end
		s.Last = &t
	}
}
