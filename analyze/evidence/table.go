package evidence

import (
	"regexp"
	"strings"

	"github.com/abuse-responder/abuse-responder/internal/ipscan"
)

// tableHeader is the column layout of a flow table in a report, such as
// "Src IP  Dst IP  Proto  DPort".
type tableHeader struct {
	cols []string // srcip, dstip, sport, dport, proto, or other
}

var (
	columnNames = strings.NewReplacer(
		"source ip address", "srcip", "destination ip address", "dstip",
		"source address", "srcip", "destination address", "dstip",
		"source ip", "srcip", "destination ip", "dstip", "src ip", "srcip", "dst ip", "dstip",
		"src addr", "srcip", "dst addr", "dstip", "dest ip", "dstip",
		"source port", "sport", "destination port", "dport", "src port", "sport", "dst port", "dport", "dest port", "dport",
		"protocol", "proto",
	)
	reCellSep = regexp.MustCompile(`\s*[|,;\t]\s*|\s{2,}`)
)

// parseTableHeader recognises a lower-case header line with a
// destination-address column; nil otherwise.
func parseTableHeader(lower string) *tableHeader {
	l := strings.TrimSpace(lower)
	if l == "" || len(l) > 300 || strings.Contains(l, ":") || ipscan.MayHold(l) {
		return nil
	}
	h := &tableHeader{}
	hasDst, known := false, 0
	for _, c := range splitCells(columnNames.Replace(l)) {
		c = strings.Trim(c, "()[]#")
		switch c {
		case "srcip", "src", "source", "srcaddr", "saddr", "src_ip", "source_ip":
			c = "srcip"
		case "dstip", "dst", "dest", "destination", "dstaddr", "daddr", "dst_ip", "dest_ip", "destination_ip":
			c, hasDst = "dstip", true
		case "dport", "dpt", "dstport", "dst_port", "dest_port", "destination_port":
			c = "dport"
		case "sport", "spt", "srcport", "src_port", "source_port":
			c = "sport"
		case "proto":
		default:
			c = "other"
		}
		if c != "other" {
			known++
		}
		h.cols = append(h.cols, c)
	}
	// Prose that mentions a destination is not a header: a header is
	// mostly column names.
	if !hasDst || known < 2 || known*2 < len(h.cols) {
		return nil
	}
	return h
}

func splitCells(l string) []string {
	l = strings.Trim(strings.TrimSpace(l), "|")
	cells := reCellSep.Split(l, -1)
	if len(cells) < 2 {
		cells = strings.Fields(l)
	}
	return cells
}

// tableRow reads one row under the current header: a line with as many
// cells as the header and an address in the destination column.
func (p *parser) tableRow(line string) (Event, bool) {
	if len(line) > 1000 {
		return Event{}, false
	}
	cells := splitCells(line)
	if len(cells) != len(p.table.cols) {
		cells = strings.Fields(line)
	}
	if len(cells) != len(p.table.cols) {
		return Event{}, false
	}
	ev := Event{Family: "table", What: "connection"}
	found := false
	for i, col := range p.table.cols {
		cell := strings.TrimSpace(cells[i])
		switch col {
		case "srcip":
			if h, ok := ipscan.First(cell); ok {
				ev.Source = h.Addr
			}
		case "dstip":
			if h, ok := ipscan.First(cell); ok {
				ev.Dest, found = h.Addr, true
				if ev.Port == 0 {
					ev.Port = hitPort(h)
				}
			}
		case "dport":
			if pt := port(cell); pt != 0 {
				ev.Port = pt
			}
		case "proto":
			ev.Protocol = protoName(cell)
		}
	}
	if !found {
		return Event{}, false
	}
	ev.Time = p.timeOf(line)
	return ev, true
}
