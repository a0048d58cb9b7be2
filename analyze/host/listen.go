package host

import (
	"cmp"
	"fmt"
	"net/netip"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// proxyNames are process names of proxy servers: one listening where
// other hosts reach it is how an open proxy usually shows.
var proxyNames = []string{"squid", "tinyproxy", "3proxy", "danted", "sockd", "privoxy", "microsocks", "gost", "ss-server"}

// reachable reports whether a socket bound to a can be reached from other
// hosts: the wildcard, or any address but loopback and link-local. A
// private address counts, since on EC2 the public address is translated
// to the instance's private one, so a proxy bound to 172.31.x.x answers
// on the public address just as one bound to 0.0.0.0 does.
func reachable(a netip.Addr) bool {
	return a.IsValid() && !a.IsLoopback() && !a.IsLinkLocalUnicast()
}

// reachWhy says who can reach a listener bound to a.
func reachWhy(a netip.Addr) string {
	if a.IsUnspecified() {
		return "reachable from anywhere"
	}
	return "reachable from other hosts on that address"
}

// ownPortWhy says why a listener's port matters.
func (c *collector) ownPortWhy() string {
	switch {
	case c.o.OwnPortsGuessed:
		return "a common proxy port"
	case len(c.o.OwnPorts) == 1:
		return "the port the report names"
	}
	return "a port the report names"
}

// listenFinding reports a listening socket on one of OwnPorts with the
// processes holding it.
func (c *collector) listenFinding(s sockEntry, pids []int) {
	bound := "LISTEN " + s.local.String()
	why := reachWhy(s.local.Addr()) + ", " + c.ownPortWhy()
	if len(pids) == 0 { // in another namespace, or unreadable without root
		c.add(Finding{Kind: KindSocket, Path: filepath.Join(c.o.ProcRoot, "net"), Listen: s.local.String(),
			Reason: bound + " (no process found): " + why})
		return
	}
	for _, pid := range pids {
		path, cmd := c.describe(pid)
		c.add(Finding{Kind: KindSocket, Path: path, PID: pid, Listen: s.local.String(),
			Reason: fmt.Sprintf("%s by pid %d (%s): %s", bound, pid, cmd, why)})
	}
}

// proxyName returns the proxy software a process is, by its comm, the
// base name of argv[0] or of its executable, or "".
func proxyName(comm, cmdline, exe string) string {
	argv0, _, _ := strings.Cut(cmdline, " ")
	exe = strings.TrimSuffix(exe, " (deleted)")
	for _, n := range []string{comm, path.Base(argv0), path.Base(exe)} {
		n = strings.ToLower(n)
		for _, p := range proxyNames {
			if nameIs(n, p) {
				return p
			}
		}
	}
	return ""
}

// proxyListens returns the reachable listening sockets a process holds,
// wildcard ones first (the widest exposure leads the reason), then by
// address.
func (c *collector) proxyListens(pid int, listeners map[uint64]sockEntry) []netip.AddrPort {
	if len(listeners) == 0 {
		return nil
	}
	inodes, err := c.fdSockets(pid)
	if err != nil { // ended meanwhile, or not ours to read: the socket rule notes the latter
		return nil
	}
	var out []netip.AddrPort
	for _, inode := range inodes {
		if s, ok := listeners[inode]; ok && !slices.Contains(out, s.local) {
			out = append(out, s.local)
		}
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int {
		return cmp.Or(
			-cmpBool(a.Addr().IsUnspecified(), b.Addr().IsUnspecified()),
			a.Addr().Compare(b.Addr()),
			cmp.Compare(a.Port(), b.Port()))
	})
	return out
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
