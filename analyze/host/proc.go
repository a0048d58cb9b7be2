package host

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// tcpStates names the kernel's TCP states that mean "talking to someone":
// an open connection or one being opened.
var tcpStates = map[string]string{"01": "ESTABLISHED", "02": "SYN_SENT"}

// stratumPorts are the usual mining-pool (stratum) ports.
var stratumPorts = map[uint16]bool{3333: true, 4444: true, 5555: true, 7777: true, 14444: true, 45700: true}

// maxProcFile bounds the read of a socket table (a busy host has tens of
// thousands of sockets, at 150 bytes each).
const maxProcFile = 64 << 20

// sockEntry is one line of /proc/net/tcp or tcp6.
type sockEntry struct {
	local, remote netip.AddrPort
	state         string // ESTABLISHED, SYN_SENT or LISTEN
	inode         uint64
}

// listenState is the kernel's TCP_LISTEN; a listener is how an open proxy
// or an exposed service shows.
const listenState = "0A"

// scanStates are the states scanProc reads: tcpStates and LISTEN.
var scanStates = map[string]string{"01": "ESTABLISHED", "02": "SYN_SENT", listenState: "LISTEN"}

// parseNetTCP parses the text of /proc/net/tcp or /proc/net/tcp6, keeping
// the sockets in the states of tcpStates. Addresses come unmapped, so
// ::ffff:203.0.113.5 reads as 203.0.113.5.
func parseNetTCP(data []byte) ([]sockEntry, error) {
	return parseSockets(data, tcpStates)
}

// parseSockets is parseNetTCP keeping the sockets in the given states.
func parseSockets(data []byte, states map[string]string) ([]sockEntry, error) {
	var out []sockEntry
	for n, line := range bytes.Split(data, []byte{'\n'}) {
		f := strings.Fields(string(line))
		if n == 0 || len(f) < 10 { // the header, or the empty last line
			continue
		}
		state, ok := states[f[3]]
		if !ok {
			continue
		}
		local, err := parseHexAddrPort(f[1])
		if err != nil {
			return out, fmt.Errorf("line %d: local address: %w", n+1, err)
		}
		remote, err := parseHexAddrPort(f[2])
		if err != nil {
			return out, fmt.Errorf("line %d: remote address: %w", n+1, err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return out, fmt.Errorf("line %d: inode: %w", n+1, err)
		}
		out = append(out, sockEntry{local: local, remote: remote, state: state, inode: inode})
	}
	return out, nil
}

// parseHexAddrPort parses "0100007F:1F90" or a 32-digit IPv6 form. The
// kernel prints each 32-bit word of the address in host order (little
// endian here) and the port in plain hex.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%q: no port", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw) != 4 && len(raw) != 16 {
		return netip.AddrPort{}, fmt.Errorf("%q: bad address", s)
	}
	for i := 0; i < len(raw); i += 4 { // each word from host order to network order
		binary.BigEndian.PutUint32(raw[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: bad port", s)
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

// scanProc looks for sockets to the targets, for listeners on the ports
// the report reached on our address, and for miner, scanner or proxy
// processes.
func (c *collector) scanProc() {
	root := c.o.ProcRoot
	var socks []sockEntry
	for _, name := range []string{"tcp", "tcp6"} {
		p := filepath.Join(root, "net", name)
		data, err := readSmall(p, maxProcFile, nil)
		if err != nil {
			c.pathProblem("socket table", p, err)
			continue
		}
		s, err := parseSockets(data, scanStates)
		if err != nil {
			c.problem("socket table %s: %v", p, err)
		}
		socks = append(socks, s...)
	}
	var toTarget, toPool, ownListeners []sockEntry
	wanted := map[uint64]bool{}
	// listeners are the listening sockets other hosts can reach, by inode:
	// the proxy-software rule of scanProcesses looks a process's up here.
	listeners := map[uint64]sockEntry{}
	for _, s := range socks {
		if s.state == "LISTEN" {
			if s.inode == 0 || !reachable(s.local.Addr()) {
				continue
			}
			listeners[s.inode] = s
			if slices.Contains(c.o.OwnPorts, s.local.Port()) {
				ownListeners = append(ownListeners, s)
				wanted[s.inode] = true
			}
			continue
		}
		switch {
		case c.isTarget(s.remote):
			toTarget = append(toTarget, s)
		case stratumPorts[s.remote.Port()] && s.state == "ESTABLISHED":
			toPool = append(toPool, s)
		default:
			continue
		}
		if s.inode != 0 {
			wanted[s.inode] = true
		}
	}
	pids := c.listPIDs()
	owners := c.socketOwners(pids, wanted)
	for _, s := range toTarget {
		c.socketFinding(s, owners[s.inode])
	}
	for _, s := range ownListeners {
		c.listenFinding(s, owners[s.inode])
	}
	c.scanProcesses(pids, toPool, owners, listeners)
}

// isTarget reports whether a remote end is a target (and on a target port
// when ports are given).
func (c *collector) isTarget(ap netip.AddrPort) bool {
	if len(c.o.TargetPorts) > 0 && !slices.Contains(c.o.TargetPorts, ap.Port()) {
		return false
	}
	for _, t := range c.o.Targets {
		if t.Unmap().WithZone("") == ap.Addr() {
			return true
		}
	}
	return false
}

func (c *collector) socketFinding(s sockEntry, pids []int) {
	conn := fmt.Sprintf("%s %s → %s", s.state, s.local, s.remote)
	if len(pids) == 0 { // in another namespace, or between owners
		c.add(Finding{Kind: KindSocket, Path: filepath.Join(c.o.ProcRoot, "net"), Reason: conn + " (no process found)"})
		return
	}
	for _, pid := range pids {
		path, cmd := c.describe(pid)
		c.add(Finding{Kind: KindSocket, Path: path, PID: pid, Reason: fmt.Sprintf("%s by pid %d (%s)", conn, pid, cmd)})
	}
}

// listPIDs returns the numeric entries of the proc root, sorted.
func (c *collector) listPIDs() []int {
	ents, err := os.ReadDir(c.o.ProcRoot)
	if err != nil {
		c.pathProblem("proc root", c.o.ProcRoot, err)
		return nil
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// socketOwners maps each wanted socket inode to the processes holding it,
// by reading the socket:[inode] links in <proc>/<pid>/fd.
func (c *collector) socketOwners(pids []int, wanted map[uint64]bool) map[uint64][]int {
	owners := map[uint64][]int{}
	if len(wanted) == 0 {
		return owners
	}
	unreadable := 0
	for _, pid := range pids {
		if c.stopped() {
			break
		}
		inodes, err := c.fdSockets(pid)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) { // a process that ended meanwhile is no problem
				unreadable++
			}
			continue
		}
		for _, inode := range inodes {
			if wanted[inode] && !slices.Contains(owners[inode], pid) {
				owners[inode] = append(owners[inode], pid)
			}
		}
	}
	if unreadable > 0 {
		c.problem("sockets: the open files of %d processes could not be read (not root?)", unreadable)
	}
	return owners
}

// fdSockets returns the inodes of the sockets a process holds open, from
// the socket:[inode] links in <proc>/<pid>/fd.
func (c *collector) fdSockets(pid int) ([]uint64, error) {
	dir := filepath.Join(c.o.ProcRoot, strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var inodes []uint64
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		inode, err := strconv.ParseUint(strings.TrimSuffix(link[len("socket:["):], "]"), 10, 64)
		if err == nil {
			inodes = append(inodes, inode)
		}
	}
	return inodes, nil
}

// describe returns a process's executable (or command line, when the
// executable cannot be read) and its command line, for a finding.
func (c *collector) describe(pid int) (path, cmdline string) {
	dir := filepath.Join(c.o.ProcRoot, strconv.Itoa(pid))
	cmdline = readCmdline(dir)
	exe, err := os.Readlink(filepath.Join(dir, "exe"))
	if err != nil || exe == "" {
		return cmp.Or(cmdline, dir), cmdline
	}
	return exe, cmdline
}

// readCmdline returns a process's command line with spaces for NULs,
// shortened for a reason text.
func readCmdline(dir string) string {
	raw, _ := readSmall(filepath.Join(dir, "cmdline"), 64<<10, nil)
	s := strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
