package host

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// maxCronFile bounds the bytes read of one crontab or unit file.
const maxCronFile = 1 << 20

var (
	pipeShellRE   = regexp.MustCompile(`\b(?:curl|wget)\b[^|;&]*\|\s*(?:sudo\s+)?(?:ba|da|z|k)?sh\b`)
	pipeBase64RE  = regexp.MustCompile(`\bbase64\s+(?:-d|--decode)\b[^|;&]*\|\s*(?:sudo\s+)?(?:ba|da|z|k)?sh\b`)
	cronEnvLineRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\s*=`)
)

// scanCron checks crontabs, then systemd timers.
func (c *collector) scanCron() {
	for _, p := range c.o.CronPaths {
		if c.stopped() {
			return
		}
		fi, err := os.Stat(p)
		if err != nil {
			c.pathProblem("cron path", p, err)
			continue
		}
		if !fi.IsDir() {
			c.cronFile(p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			c.problem("cron path %s: %v", p, err)
			continue
		}
		for _, e := range ents { // one level only: /var/spool/cron holds crontabs/, listed on its own
			if e.Type().IsRegular() {
				c.cronFile(filepath.Join(p, e.Name()))
			}
		}
	}
	c.scanTimers()
}

// cronFile checks one crontab. /etc/crontab and files in a cron.d folder
// have a user field; a user crontab is named after its user.
func (c *collector) cronFile(p string) {
	data, err := readSmall(p, maxCronFile, nil)
	if err != nil {
		c.problem("cron file %s: %v", p, err)
		return
	}
	system := filepath.Base(p) == "crontab" || filepath.Base(filepath.Dir(p)) == "cron.d"
	user := filepath.Base(p)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxCronFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || cronEnvLineRE.MatchString(line) {
			continue
		}
		fields := 5
		if line[0] == '@' { // @reboot, @daily …
			fields = 1
		}
		if system {
			fields++
		}
		head, cmd := cutFields(line, fields)
		if cmd == "" {
			continue
		}
		lineUser := user
		if system {
			lineUser = head[len(head)-1]
		}
		if why := c.suspectCommand(cmd, lineUser); len(why) > 0 {
			c.add(Finding{Kind: KindCron, Path: p, Line: n, Reason: fmt.Sprintf("%s: %s", joinAnd(why), shorten(cmd))})
		}
	}
}

// cutFields splits off the first n blank-separated fields of s and returns
// them and the rest, as written.
func cutFields(s string, n int) ([]string, string) {
	var head []string
	for len(head) < n {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return head, ""
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		head = append(head, s[:end])
		s = s[end:]
	}
	return head, strings.TrimSpace(s)
}

// suspectCommand returns why a scheduled command run as user is suspect.
func (c *collector) suspectCommand(cmd, user string) []string {
	var why []string
	if slices.Contains(c.o.WebUsers, user) {
		why = append(why, "runs as web user "+user)
	}
	for _, root := range c.o.WebRoots {
		root = strings.TrimSuffix(root, "/")
		if root != "" && (strings.Contains(cmd, root+"/") || strings.HasSuffix(cmd, root)) {
			why = append(why, "runs from web root "+root)
			break
		}
	}
	for _, dir := range []string{"/tmp/", "/var/tmp/", "/dev/shm/"} {
		if strings.Contains(cmd, dir) {
			why = append(why, "runs from "+strings.TrimSuffix(dir, "/"))
			break
		}
	}
	if pipeShellRE.MatchString(cmd) {
		why = append(why, "pipes a download into a shell")
	}
	if pipeBase64RE.MatchString(cmd) {
		why = append(why, "pipes base64-decoded text into a shell")
	}
	lower := strings.ToLower(cmd)
	for _, m := range minerNames {
		if hostIndex([]byte(lower), []byte(m)) >= 0 {
			why = append(why, "names the coin miner "+m)
			break
		}
	}
	if strings.Contains(lower, "stratum+tcp://") || strings.Contains(lower, "stratum+ssl://") {
		why = append(why, "a stratum (mining pool) URL")
	}
	return why
}

// shorten cuts a command for a reason text.
func shorten(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
