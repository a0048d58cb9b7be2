package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/abuse-responder/abuse-responder/analyze"
)

// The demo's host: what an admin would find on the scanning instance of
// the built-in notice. The script probes the reported targets, and the
// access log shows who drove it, within the notice's abuse window.
var demoHostFiles = map[string]string{
	"var/www/html/index.php": "<?php\n// A small shop front page.\nrequire __DIR__ . '/shop.php';\n",
	"var/www/html/shop.php":  "<?php\nfunction price($cents) { return number_format($cents / 100, 2); }\n",
	"var/www/html/wp-content/uploads/2026/04/.thumb.php": `<?php
// dropped through an upload form; probes the hosts it is given
$hosts = ['203.0.113.10', '203.0.113.11', '203.0.113.12'];
foreach ($hosts as $h) {
  foreach ([23, 2323, 445, 5900] as $port) {
    $s = @fsockopen($h, $port, $errno, $errstr, 1);
    if ($s) { fclose($s); }
  }
}
`,
	// An empty socket table: the demo looks at no connection of this machine.
	"proc/net/tcp":  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
	"proc/net/tcp6": "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
	"var/log/apache2/access.log": `192.0.2.50 - - [14/Apr/2026:01:30:12 +0000] "GET / HTTP/1.1" 200 5120 "-" "Mozilla/5.0"
192.0.2.9 - - [14/Apr/2026:01:45:40 +0000] "POST /wp-content/uploads/2026/04/.thumb.php HTTP/1.1" 200 0 "-" "curl/8.5.0"
192.0.2.9 - - [14/Apr/2026:01:46:51 +0000] "POST /wp-content/uploads/2026/04/.thumb.php HTTP/1.1" 200 0 "-" "curl/8.5.0"
192.0.2.50 - - [14/Apr/2026:01:52:03 +0000] "GET /shop.php HTTP/1.1" 200 2210 "-" "Mozilla/5.0"
`,
}

// demoAnalyzer writes the demo host under root and returns an analyzer
// that reads only that tree (no crontab or process of this machine) and
// asks AWS at the demo's emulator, endpoint, only.
func demoAnalyzer(root, endpoint string) (*analyze.Analyzer, error) {
	for name, content := range demoHostFiles {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	// A live log was last written near its last line: the collector skips
	// logs that ended before the abuse window.
	last := time.Date(2026, 4, 14, 1, 52, 3, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(root, "var/log/apache2/access.log"), last, last); err != nil {
		return nil, fmt.Errorf("date the demo log: %w", err)
	}
	return analyze.New(analyze.Config{
		Accounts: []analyze.Account{{ID: demoAccount}}, Regions: []string{demoRegion}, EndpointURL: endpoint,
		// One attempt: the emulator answers at once, and a retry's backoff
		// would only hide a bug behind seconds of waiting.
		MaxAttempts: 1,
		// This machine is not the demo's instance, and must not be asked.
		Identity:   func(context.Context) string { return "" },
		HostMode:   analyze.HostLocal,
		WebRoots:   []string{filepath.Join(root, "var/www/html")},
		AccessLogs: []string{filepath.Join(root, "var/log/apache2/access*.log")},
		ModsecLogs: []string{}, CronPaths: []string{}, UnitDirs: []string{},
		ProcRoot: filepath.Join(root, "proc"),
	}, nil), nil
}
