package evidence

import (
	"strings"

	"github.com/abuse-responder/abuse-responder/internal/ipscan"
	"github.com/abuse-responder/abuse-responder/internal/logtable"
	"github.com/abuse-responder/abuse-responder/internal/logtext"
)

// parseTableHeader recognises a lower-case header line with a
// destination-address column ("src ip  dst ip  proto  dport"); nil
// otherwise. A long line, or one that may hold an address, is not a header.
func parseTableHeader(lower string) *logtable.Header {
	l := strings.TrimSpace(lower)
	if len(l) > 300 || ipscan.MayHold(l) {
		return nil
	}
	return logtable.ParseHeader(l)
}

// tableRow reads one row under the current header: a line with as many
// cells as the header and an address in the destination column.
func (p *parser) tableRow(line string) (Event, bool) {
	if len(line) > 1000 {
		return Event{}, false
	}
	cells, ok := p.table.Cells(line)
	if !ok {
		return Event{}, false
	}
	ev := Event{Family: "table", What: "connection"}
	found := false
	for i, col := range p.table.Cols {
		cell := cells[i]
		switch col {
		case logtable.SrcIP:
			if h, ok := ipscan.First(cell); ok {
				ev.Source = h.Addr
			}
		case logtable.DstIP:
			if h, ok := ipscan.First(cell); ok {
				ev.Dest, found = h.Addr, true
				if ev.Port == 0 {
					ev.Port = hitPort(h)
				}
			}
		case logtable.DPort:
			if pt := port(cell); pt != 0 {
				ev.Port = pt
			}
		case logtable.Proto:
			ev.Protocol = logtext.Proto(cell)
		}
	}
	if !found {
		return Event{}, false
	}
	ev.Time = p.timeOf(line)
	return ev, true
}
