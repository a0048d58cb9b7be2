package notice

import (
	"strconv"
	"strings"

	"github.com/abuse-responder/abuse-responder/internal/ipscan"
	"github.com/abuse-responder/abuse-responder/internal/logtable"
	"github.com/abuse-responder/abuse-responder/internal/logtext"
)

// parseTableHeader recognises a header line with a destination-address
// column ("Src IP  Dst IP  Proto  DPort"); nil otherwise. A line holding an
// address is a row, not a header.
func parseTableHeader(line string) *logtable.Header {
	l := strings.ToLower(strings.TrimSpace(line))
	h := logtable.ParseHeader(l)
	if h == nil || len(ipscan.Hits(l)) > 0 {
		return nil
	}
	return h
}

// tableRow reads one row under h: a line with as many cells as the header.
func (c *collector) tableRow(line string, h *logtable.Header) bool {
	hits := ipscan.Hits(line)
	if len(hits) == 0 {
		return false
	}
	if cells, ok := h.Cells(line); ok {
		var dst ipscan.Hit
		found, port, proto := false, 0, ""
		for i, col := range h.Cols {
			cell := cells[i]
			switch col {
			case logtable.SrcIP:
				c.addOwn(cell)
			case logtable.DstIP:
				dst, found = ipscan.First(cell)
			case logtable.DPort:
				port, _ = strconv.Atoi(cell)
			case logtable.Proto:
				proto = logtext.Proto(cell)
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
