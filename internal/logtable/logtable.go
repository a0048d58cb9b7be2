// Package logtable reads the column tables that abuse reports paste flows
// in, such as
//
//	Src IP          Dst IP         Proto  DPort
//	198.51.100.31   203.0.113.8    TCP    22
//
// It tells a header line from prose, names its columns, and splits the rows
// under it into cells. What a row means (an event, a target) is left to the
// caller; the notice parser and the evidence parser share this package so
// that both recognise the same tables.
package logtable

import (
	"regexp"
	"strings"
)

// Column is the normalised name of a table column.
type Column string

// The columns a header may name; any other column is Other.
const (
	SrcIP Column = "srcip"
	DstIP Column = "dstip"
	SPort Column = "sport"
	DPort Column = "dport"
	Proto Column = "proto"
	Other Column = "other"
)

// Header is the column layout of a table, read from its header line. It
// always has a DstIP column.
type Header struct {
	Cols []Column
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

// ParseHeader recognises a lower-case header line with a destination-address
// column and returns its layout; nil otherwise. A line with a colon is a
// label ("Destination: …"), not a header, and prose that mentions a
// destination is not one either: a header is mostly column names. Callers
// that must also reject lines holding an address check that themselves.
func ParseHeader(lower string) *Header {
	l := strings.TrimSpace(lower)
	if l == "" || strings.Contains(l, ":") {
		return nil
	}
	h := &Header{}
	hasDst, known := false, 0
	for _, c := range splitCells(columnNames.Replace(l)) {
		var col Column
		switch strings.Trim(c, "()[]#") {
		case "srcip", "src", "source", "srcaddr", "saddr", "src_ip", "source_ip":
			col = SrcIP
		case "dstip", "dst", "dest", "destination", "dstaddr", "daddr", "dst_ip", "dest_ip", "destination_ip":
			col, hasDst = DstIP, true
		case "dport", "dpt", "dstport", "dst_port", "dest_port", "destination_port":
			col = DPort
		case "sport", "spt", "srcport", "src_port", "source_port":
			col = SPort
		case "proto":
			col = Proto
		default:
			col = Other
		}
		if col != Other {
			known++
		}
		h.Cols = append(h.Cols, col)
	}
	if !hasDst || known < 2 || known*2 < len(h.Cols) {
		return nil
	}
	return h
}

// Cells splits a row under h into one trimmed cell per column: by the
// separators a header uses (|, comma, semicolon, tab, two or more blanks),
// else by single blanks. It reports false when neither split gives as many
// cells as h has columns.
func (h *Header) Cells(line string) ([]string, bool) {
	cells := splitCells(line)
	if len(cells) != len(h.Cols) {
		cells = strings.Fields(line)
	}
	if len(cells) != len(h.Cols) {
		return nil, false
	}
	for i, c := range cells {
		cells[i] = strings.TrimSpace(c)
	}
	return cells, true
}

func splitCells(l string) []string {
	l = strings.Trim(strings.TrimSpace(l), "|")
	cells := reCellSep.Split(l, -1)
	if len(cells) < 2 {
		cells = strings.Fields(l)
	}
	return cells
}
