package host

import (
	"cmp"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// minerNames and scannerNames are process names of known coin miners and
// network scanners or password guessers.
var (
	minerNames   = []string{"xmrig", "minerd", "cpuminer", "nbminer", "t-rex", "lolminer", "ethminer", "phoenixminer", "kinsing", "kdevtmpfsi"}
	scannerNames = []string{"masscan", "zmap", "hydra", "medusa", "ncrack", "nmap"}
)

// scanProcesses flags processes by name, by a stratum URL in the command
// line, by a connection to a mining-pool port, by an executable run from a
// scratch folder, or as proxy software listening where other hosts reach
// it (listeners, by inode).
func (c *collector) scanProcesses(pids []int, toPool []sockEntry, owners map[uint64][]int, listeners map[uint64]sockEntry) {
	pool := map[int][]string{}
	for _, s := range toPool {
		for _, pid := range owners[s.inode] {
			pool[pid] = append(pool[pid], s.remote.String())
		}
	}
	for _, pid := range pids {
		if c.stopped() {
			return
		}
		dir := filepath.Join(c.o.ProcRoot, strconv.Itoa(pid))
		comm, err := readSmall(filepath.Join(dir, "comm"), 4096, nil)
		if err != nil {
			continue // ended meanwhile
		}
		cmdline := readCmdline(dir)
		exe, _ := os.Readlink(filepath.Join(dir, "exe"))
		var why []string
		if name := knownName(strings.TrimSpace(string(comm)), cmdline); name != "" {
			why = append(why, name)
		}
		if strings.Contains(cmdline, "stratum+tcp://") || strings.Contains(cmdline, "stratum+ssl://") || strings.Contains(cmdline, "stratum2+tcp://") {
			why = append(why, "a stratum (mining pool) URL in its command line")
		}
		if remotes := pool[pid]; len(remotes) > 0 {
			why = append(why, "connected to a mining-pool port at "+listSome(remotes, 4))
		}
		if where := scratchExe(exe); where != "" {
			why = append(why, where)
		}
		// A proxy server is normal; one that other hosts reach is what an
		// open-proxy report is about, so only that is flagged.
		var listen string
		if name := proxyName(strings.TrimSpace(string(comm)), cmdline, exe); name != "" {
			if bound := c.proxyListens(pid, listeners); len(bound) > 0 {
				listen = bound[0].String()
				var list []string
				for _, b := range bound {
					list = append(list, b.String())
				}
				why = append(why, fmt.Sprintf("the proxy software %s listening on %s (%s)", name, listSome(list, 4), reachWhy(bound[0].Addr())))
			}
		}
		if len(why) == 0 {
			continue
		}
		p := exe
		if p == "" {
			p = dir
		}
		c.add(Finding{Kind: KindProcess, Path: p, PID: pid, Listen: listen,
			Reason: fmt.Sprintf("pid %d (%s): %s", pid, cmp.Or(cmdline, strings.TrimSpace(string(comm))), joinAnd(why))})
	}
}

// knownName returns a reason when the process's name (comm, or the base
// name of argv[0]) is a known miner or scanner.
func knownName(comm, cmdline string) string {
	argv0, _, _ := strings.Cut(cmdline, " ")
	names := []string{strings.ToLower(comm), strings.ToLower(path.Base(argv0))}
	for _, n := range names {
		for _, m := range minerNames {
			if nameIs(n, m) {
				return "named like the coin miner " + m
			}
		}
		for _, s := range scannerNames {
			if nameIs(n, s) {
				return "named like the scanner or password guesser " + s
			}
		}
	}
	return ""
}

// nameIs reports whether n is known, or known plus a version or variant
// suffix (xmrig-6.21, xmrig_notls).
func nameIs(n, known string) bool {
	if !strings.HasPrefix(n, known) {
		return false
	}
	rest := n[len(known):]
	return rest == "" || rest[0] == '-' || rest[0] == '_' || rest[0] == '.'
}

// scratchExe says why an executable's place is suspect: /dev/shm always,
// or a deleted file that lived in a world-writable scratch folder (droppers
// delete themselves once running; a deleted /usr/sbin/sshd after an
// upgrade is normal and not flagged).
func scratchExe(exe string) string {
	if strings.HasPrefix(exe, "/dev/shm/") {
		return "runs from /dev/shm"
	}
	if p, ok := strings.CutSuffix(exe, " (deleted)"); ok {
		for _, dir := range []string{"/tmp/", "/var/tmp/", "/dev/shm/"} {
			if strings.HasPrefix(p, dir) {
				return "runs from deleted file " + p
			}
		}
	}
	return ""
}
