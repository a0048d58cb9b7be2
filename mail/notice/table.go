package notice

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/abuse-responder/abuse-responder/internal/ipscan"
)

// tableHeader is the column layout of a flow table in a report, such as
// "Src IP  Dst IP  Proto  DPort".
type tableHeader struct {
	cols []string // normalised names: srcip, dstip, sport, dport, proto, or other
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

// parseTableHeader recognises a header line with a destination-address
// column; nil otherwise.
func parseTableHeader(line string) *tableHeader {
	l := strings.ToLower(strings.TrimSpace(line))
	if l == "" || strings.Contains(l, ":") || len(ipscan.Hits(l)) > 0 {
		return nil
	}
	cells := splitCells(columnNames.Replace(l))
	h := &tableHeader{}
	hasDst, known := false, 0
	for _, c := range cells {
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

// tableRow reads one row under h: a line with as many cells as the header.
func (c *collector) tableRow(line string, h *tableHeader) bool {
	hits := ipscan.Hits(line)
	if len(hits) == 0 {
		return false
	}
	cells := splitCells(line)
	if len(cells) != len(h.cols) {
		cells = strings.Fields(line)
	}
	if len(cells) == len(h.cols) {
		var dst ipscan.Hit
		found, port, proto := false, 0, ""
		for i, col := range h.cols {
			cell := strings.TrimSpace(cells[i])
			switch col {
			case "srcip":
				c.addOwn(cell)
			case "dstip":
				dst, found = ipscan.First(cell)
			case "dport":
				port, _ = strconv.Atoi(cell)
			case "proto":
				proto = protoName(cell)
			}
		}
		if found {
			c.add(dst.Addr, max(port, dst.Port, 0), proto)
			return true
		}
	}
	// A line that does not fit the columns is prose under the table; the
	// other rules read it.
	return false
}
