package host

import (
	"fmt"
	"strings"
)

// maxClients bounds the client addresses named in a group's reason.
const maxClients = 8

// reqGroup is a group of log lines that become one request finding.
type reqGroup struct {
	path    string // the log file
	noun    noun   // what was counted
	what    string // after the noun: "to flagged script /x.php"
	first   int
	last    int
	count   int
	lines   []int
	clients []string
	seen    map[string]bool
}

// noun is a counted thing, in the singular and the plural.
type noun struct{ one, many string }

var (
	nounRequest = noun{"request", "requests"}
	nounEntry   = noun{"ModSecurity entry", "ModSecurity entries"}
)

// reqGroups collects request groups in the order they first appear.
type reqGroups struct {
	m     map[string]*reqGroup
	order []*reqGroup
}

func newReqGroups() *reqGroups { return &reqGroups{m: map[string]*reqGroup{}} }

// add counts line n of the log path in the group key; a line already
// counted last in that group (another spelling of the same target) is not
// counted twice.
func (gs *reqGroups) add(key, path string, nn noun, what string, n int, client string) {
	g := gs.m[key]
	if g == nil {
		g = &reqGroup{path: path, noun: nn, what: what, first: n, seen: map[string]bool{}}
		gs.m[key] = g
		gs.order = append(gs.order, g)
	}
	if g.count > 0 && g.last == n {
		return
	}
	g.count++
	g.last = n
	if len(g.lines) < maxGroupLines {
		g.lines = append(g.lines, n)
	}
	if client != "" && !g.seen[client] {
		g.seen[client] = true
		g.clients = append(g.clients, client)
	}
}

// flush turns the groups into request findings.
func (c *collector) flush(gs *reqGroups) {
	for _, g := range gs.order {
		nn := g.noun.many
		if g.count == 1 {
			nn = g.noun.one
		}
		reason := fmt.Sprintf("%d %s %s", g.count, nn, g.what)
		if len(g.clients) > 0 {
			reason += " from " + listSome(g.clients, maxClients)
		}
		c.add(Finding{Kind: KindRequest, Path: g.path, Line: g.first, Reason: reason, Count: g.count, Lines: g.lines})
	}
	gs.m, gs.order = map[string]*reqGroup{}, nil
}

// listSome lists at most n items: "a, b and 3 more".
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
