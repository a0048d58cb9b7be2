// Package host gathers evidence on the host that AWS says attacked a third
// party: scripts dropped into web roots, the requests that ran them (access
// and ModSecurity logs), sockets and processes talking to the targets, and
// cron jobs or timers that keep an attack alive.
//
// It only reads. Files are opened read-only (with O_NOATIME when the kernel
// allows it, so that access times stay usable as evidence), nothing is
// created or changed, and every read is bounded in bytes and by the
// caller's context.
package host

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"time"
)

// Options says where to look and what to look for. Nil path lists other
// than WebRoots, AccessLogs and ModsecLogs take their defaults; an empty,
// non-nil list means "none".
type Options struct {
	AccessLogs  []string     // filepath.Glob patterns; each also matches its rotated files: <name>.1, <name>.2.gz, <name>-20260401(.gz)
	ModsecLogs  []string     // globs, same rotation rule; error-log lines, serial audit logs and JSON audit logs
	WebRoots    []string     // directories; none when empty; a missing one is skipped and noted in Problems
	From, To    time.Time    // the window: abuse_time ± margin, inclusive at both ends
	Targets     []netip.Addr // third-party addresses
	TargetPorts []uint16     // may be empty: then any remote port counts
	TargetHosts []string     // DNS names of targets
	ProcRoot    string       // default "/proc"
	CronPaths   []string     // default /etc/crontab, /etc/cron.d, /var/spool/cron/crontabs, /var/spool/cron
	UnitDirs    []string     // systemd timer/service dirs; default /etc/systemd/system, /run/systemd/system, /usr/lib/systemd/system
	WebUsers    []string     // default www-data, apache, nginx, httpd
	MaxLogBytes int64        // per log file (uncompressed bytes), default 8 GiB
	MaxFileRead int64        // per web-root file read for content checks, default 2 MiB
	MaxFiles    int          // web-root files examined, default 2,000,000

	// OwnPorts are ports on our own address that the report says were
	// reached (an open proxy's, an exposed service's): listening sockets
	// on them that other hosts can reach are reported.
	OwnPorts []uint16
	// OwnPortsGuessed says OwnPorts are common proxy ports, not ones the
	// report names; only the reasons differ.
	OwnPortsGuessed bool
}

// Finding is one piece of evidence. Its JSON form is the `collect --json`
// contract of DESIGN.md.
type Finding struct {
	Kind   string `json:"kind"`            // script, request, socket, cron, process, file
	Path   string `json:"path"`            // a file path; for request findings the log file
	Line   int    `json:"line"`            // from 1; the first line for a group; 0 when not applicable
	Reason string `json:"reason"`          // why it matched, for a human
	Count  int    `json:"count,omitempty"` // for a group of log lines
	Lines  []int  `json:"lines,omitempty"` // line numbers of the group, at most maxGroupLines
	PID    int    `json:"pid,omitempty"`
	// Listen is the bound address of a listening socket, or of the
	// listening socket of a flagged proxy process ("0.0.0.0:3128"); ""
	// for everything else. It tells a listener from a connection without
	// reading the reason, which can quote a process's attacker-chosen
	// command line.
	Listen string `json:"listen,omitempty"`
}

// Result is what Collect found, in a deterministic order.
type Result struct {
	Findings []Finding `json:"findings"`           // never nil
	Problems []string  `json:"problems,omitempty"` // unreadable files, bounds hit, missing paths
}

// Finding kinds.
const (
	KindScript  = "script"
	KindRequest = "request"
	KindFile    = "file"
	KindSocket  = "socket"
	KindProcess = "process"
	KindCron    = "cron"
)

// maxGroupLines caps Finding.Lines; Count stays exact.
const maxGroupLines = 1000

// kindOrder is the sort order of findings: the cause first, then what it did.
var kindOrder = map[string]int{KindScript: 0, KindRequest: 1, KindFile: 2, KindSocket: 3, KindProcess: 4, KindCron: 5}

// Collect gathers host evidence. It never writes anything. When ctx ends it
// stops and returns what it has, with a Problem saying so; the error is
// reserved for options that make no sense.
func Collect(ctx context.Context, o Options) (Result, error) {
	if o.From.IsZero() || o.To.IsZero() || o.To.Before(o.From) {
		return Result{Findings: []Finding{}}, fmt.Errorf("collect: window %v … %v: need From ≤ To, both set", o.From, o.To)
	}
	c := newCollector(ctx, o)
	// Web roots come first: the log scans look for requests to the
	// scripts flagged there.
	stages := []func(){c.scanWebRoots, c.scanAccessLogs, c.scanModsecLogs, c.scanProc, c.scanCron}
	for _, stage := range stages {
		if c.stopped() {
			break
		}
		stage()
	}
	return c.result(), nil
}

// collector holds the state of one Collect call. It is used by one
// goroutine only.
type collector struct {
	ctx      context.Context
	o        Options
	defaults map[string]bool // paths that came from defaults, for gentler notes
	addrs    []addrNeedle    // Targets as text
	hosts    [][]byte        // TargetHosts, lower case
	scripts  []flaggedScript // filled by scanWebRoots
	findings []Finding
	problems []string
	halted   bool
}

func newCollector(ctx context.Context, o Options) *collector {
	c := &collector{ctx: ctx, defaults: map[string]bool{}}
	def := func(list []string, d ...string) []string {
		if list != nil {
			return list
		}
		for _, p := range d {
			c.defaults[p] = true
		}
		return d
	}
	o.CronPaths = def(o.CronPaths, "/etc/crontab", "/etc/cron.d", "/var/spool/cron/crontabs", "/var/spool/cron")
	o.UnitDirs = def(o.UnitDirs, "/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system")
	if o.WebUsers == nil {
		o.WebUsers = []string{"www-data", "apache", "nginx", "httpd"}
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
		c.defaults[o.ProcRoot] = true
	}
	if o.MaxLogBytes <= 0 {
		o.MaxLogBytes = 8 << 30
	}
	if o.MaxFileRead <= 0 {
		o.MaxFileRead = 2 << 20
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = 2_000_000
	}
	c.o = o
	c.addrs = addrNeedles(o.Targets)
	c.hosts = hostNeedles(o.TargetHosts)
	return c
}

// stopped reports whether the context has ended, noting it once.
func (c *collector) stopped() bool {
	if c.halted {
		return true
	}
	if err := c.ctx.Err(); err != nil {
		c.halted = true
		c.problem("stopped early (%v): the result is partial", context.Cause(c.ctx))
		return true
	}
	return false
}

func (c *collector) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// missing notes a path that does not exist; it is never an error.
func (c *collector) missing(what, path string) {
	if c.defaults[path] {
		c.problem("%s %s (default) does not exist", what, path)
		return
	}
	c.problem("%s %s does not exist", what, path)
}

// pathProblem notes err for path, telling a missing path apart.
func (c *collector) pathProblem(what, path string, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		c.missing(what, path)
		return
	}
	c.problem("%s %s: %v", what, path, err)
}

func (c *collector) add(f Finding) {
	c.findings = append(c.findings, f)
}

func (c *collector) result() Result {
	fs := c.findings
	if fs == nil {
		fs = []Finding{}
	}
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.PID, b.PID),
			cmp.Compare(a.Reason, b.Reason),
		)
	})
	return Result{Findings: fs, Problems: c.problems}
}

// inWindow reports whether t lies in [From, To]; instants are compared, so
// the zone a log wrote does not matter.
func (c *collector) inWindow(t time.Time) bool {
	return !t.Before(c.o.From) && !t.After(c.o.To)
}
