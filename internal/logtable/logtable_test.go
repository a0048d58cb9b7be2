package logtable

import (
	"strings"
	"testing"
)

func colsString(h *Header) string {
	if h == nil {
		return "nil"
	}
	var s []string
	for _, c := range h.Cols {
		s = append(s, string(c))
	}
	return strings.Join(s, " ")
}

func TestParseHeader(t *testing.T) {
	tests := []struct{ lower, want string }{
		{"src ip          dst ip         proto  dport", "srcip dstip proto dport"},
		{"source ip address | destination ip address | protocol | destination port", "srcip dstip proto dport"},
		// Outer pipes are cut before the split but the blanks inside them
		// are not, so the first and last names are not recognised. Both
		// parsers have always read such headers so; kept as it is.
		{"| src ip | dst ip | proto | dport |", "other dstip proto other"},
		{"timestamp,src_ip,dst_ip,src_port,dst_port", "other srcip dstip sport dport"},
		{"date\ttime\tsaddr\tdaddr\tdpt", "other other srcip dstip dport"},
		{"(src) [dst] #dport", "srcip dstip dport"},
		{"source destination", "srcip dstip"},
		// Not headers.
		{"", "nil"},
		{"destination: 203.0.113.8", "nil"},                   // a label
		{"src ip  proto  dport", "nil"},                       // no destination column
		{"dst ip", "nil"},                                     // one known column
		{"we saw traffic to the destination you host", "nil"}, // prose
		{"dst  a  b  c  d", "nil"},                            // mostly unknown columns
	}
	for _, tt := range tests {
		if got := colsString(ParseHeader(tt.lower)); got != tt.want {
			t.Errorf("ParseHeader(%q) = %s, want %s", tt.lower, got, tt.want)
		}
	}
}

func TestCells(t *testing.T) {
	h := ParseHeader("src ip  dst ip  proto  dport")
	tests := []struct {
		line string
		want string // cells joined by "/", or "-" for no fit
	}{
		{"198.51.100.1    203.0.113.8   TCP    22", "198.51.100.1/203.0.113.8/TCP/22"},
		{"| 198.51.100.1 | 203.0.113.8 | TCP | 22 |", "198.51.100.1/203.0.113.8/TCP/22"},
		{"198.51.100.1 203.0.113.8 TCP 22", "198.51.100.1/203.0.113.8/TCP/22"}, // single blanks
		{"198.51.100.1,203.0.113.8, udp ,53", "198.51.100.1/203.0.113.8/udp/53"},
		{"198.51.100.1 203.0.113.8 TCP", "-"},
		{"we then saw more of the same traffic", "-"},
	}
	for _, tt := range tests {
		cells, ok := h.Cells(tt.line)
		got := "-"
		if ok {
			got = strings.Join(cells, "/")
		}
		if got != tt.want {
			t.Errorf("Cells(%q) = %s, want %s", tt.line, got, tt.want)
		}
	}
}
