package host

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// unitLine is a "Key=value" line of a systemd unit file.
type unitLine struct {
	n          int
	section    string
	key, value string
}

// parseUnit reads the Key=value lines of a unit file, with their sections.
// Continuation lines (ending in a backslash) are joined.
func parseUnit(data []byte) []unitLine {
	var out []unitLine
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxCronFile)
	var pending *unitLine
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending != nil {
			pending.value += " " + strings.TrimSuffix(line, "\\")
			if !strings.HasSuffix(line, "\\") {
				out, pending = append(out, *pending), nil
			}
			continue
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		ul := unitLine{n: n, section: section, key: strings.TrimSpace(k), value: strings.TrimSpace(v)}
		if strings.HasSuffix(ul.value, "\\") {
			ul.value = strings.TrimSuffix(ul.value, "\\")
			pending = &ul
			continue
		}
		out = append(out, ul)
	}
	if pending != nil {
		out = append(out, *pending)
	}
	return out
}

// scanTimers checks the service each *.timer starts with the tests that
// crontab lines get.
func (c *collector) scanTimers() {
	for _, dir := range c.o.UnitDirs {
		if c.stopped() {
			return
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			c.pathProblem("unit folder", dir, err)
			continue
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".timer") || e.IsDir() {
				continue
			}
			c.timer(filepath.Join(dir, e.Name()))
		}
	}
}

// timer checks one timer unit and the service it starts.
func (c *collector) timer(p string) {
	if dest, err := os.Readlink(p); err == nil && dest == "/dev/null" {
		return // masked
	}
	data, err := readSmall(p, maxCronFile, nil)
	if err != nil {
		c.problem("timer %s: %v", p, err)
		return
	}
	service := strings.TrimSuffix(filepath.Base(p), ".timer") + ".service"
	for _, l := range parseUnit(data) {
		if l.section == "Timer" && l.key == "Unit" {
			service = l.value
		}
	}
	sp := c.findUnit(filepath.Dir(p), service)
	if sp == "" {
		c.problem("timer %s: its unit %s was not found", p, service)
		return
	}
	data, err = readSmall(sp, maxCronFile, nil)
	if err != nil {
		c.problem("service %s: %v", sp, err)
		return
	}
	lines := parseUnit(data)
	user := "root"
	for _, l := range lines {
		if l.section == "Service" && l.key == "User" {
			user = l.value
		}
	}
	for _, l := range lines {
		if l.section != "Service" || !strings.HasPrefix(l.key, "Exec") {
			continue
		}
		// Strip systemd's prefixes (-, @, +, !) off the command.
		cmd := strings.TrimLeft(l.value, "-@+!:")
		if why := c.suspectCommand(cmd, user); len(why) > 0 {
			c.add(Finding{Kind: KindCron, Path: sp, Line: l.n,
				Reason: fmt.Sprintf("timer %s starts %s=%s: %s", filepath.Base(p), l.key, shorten(cmd), joinAnd(why))})
		}
	}
}

// findUnit looks for a unit by name next to the timer, then in UnitDirs.
func (c *collector) findUnit(first, name string) string {
	if strings.ContainsRune(name, '/') {
		return ""
	}
	for _, dir := range append([]string{first}, c.o.UnitDirs...) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}
