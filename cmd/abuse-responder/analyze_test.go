package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/internal/awstest"
)

// seedHost writes the host of the seed's case: a web root with the script
// that brute-forces shop.example.org, and the access log that shows the
// requests driving it.
func seedHost(t *testing.T) (webRoot, accessLog, script string) {
	t.Helper()
	dir := t.TempDir()
	webRoot = filepath.Join(dir, "www", "html")
	script = filepath.Join(webRoot, "wp-content", "uploads", "2026", "04", "cache.php")
	files := map[string]string{
		filepath.Join(webRoot, "index.php"): "<?php\nrequire __DIR__ . '/wp-blog-header.php';\n",
		script: "<?php\n$mh = curl_multi_init();\nforeach (file('/tmp/.p') as $pw) {\n" +
			"  $ch = curl_init('https://shop.example.org/wp-login.php');\n  curl_multi_add_handle($mh, $ch);\n}\n" +
			"do { curl_multi_exec($mh, $running); } while ($running);\n",
	}
	accessLog = filepath.Join(dir, "log", "access.log")
	var log strings.Builder
	for _, at := range []string{"01:40:11", "01:44:53", "01:46:40"} {
		fmt.Fprintf(&log, `192.0.2.9 - - [14/Apr/2026:%s +0000] "POST /wp-content/uploads/2026/04/cache.php HTTP/1.1" 200 12 "-" "python-requests/2.31"`+"\n", at)
	}
	files[accessLog] = log.String()
	for path, content := range files {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 4, 14, 1, 46, 40, 0, time.UTC)
	os.Chtimes(accessLog, at, at)
	return webRoot, accessLog, script
}

// hostConfigFile writes a config for analyze and collect; endpoint "" means no AWS.
func hostConfigFile(t *testing.T, endpoint, webRoot, accessLog string) string {
	t.Helper()
	dir := t.TempDir()
	aws := ""
	if endpoint != "" {
		aws = fmt.Sprintf("[aws]\nendpoint_url = %q\nregions = [\"eu-central-1\"]\n[[aws.accounts]]\nid = \"111122223333\"\n", endpoint)
	}
	cfg := fmt.Sprintf(`[imap]
address = "127.0.0.1:143"
tls = "none"
username = "abuse@example.com"
password = "x"
[smtp]
address = "127.0.0.1:25"
tls = "none"
from = "abuse@example.com"
[notices]
senders = ["trustandsafety@support.aws.com"]
accounts = ["111122223333"]
[approval]
approvers = ["alice@example.com"]
summary_to = ["ops@example.com"]
authserv_id = "mx.example.com"
[store]
path = %q
%s[analyze]
access_logs = [%q]
modsec_logs = []
web_roots = [%q]
host_evidence = "local"
`, filepath.Join(dir, "state.db"), aws, accessLog, webRoot)
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAnalyzeJSON is the "done when": for a notice and a host
// fixture, analyze --json names the instance, the verdict, and the script
// at fault with its evidence lines. EC2 is our fake over HTTP.
func TestAnalyzeJSON(t *testing.T) {
	awstest.Env(t)
	f := awstest.SeedWorld(t, awstest.SeedOptions{})
	f.SetSSMManaged(awstest.SeedInstanceID)
	webRoot, accessLog, script := seedHost(t)
	cfg := hostConfigFile(t, f.URL(), webRoot, accessLog)

	code, out, errOut := runCmd(t, "analyze", "--json", "--config", cfg, "testdata/seed-notice.eml")
	if code != 0 {
		t.Fatalf("analyze --json: exit %d, stderr %q", code, errOut)
	}
	var a struct {
		CaseID  string `json:"case_id"`
		Verdict string `json:"verdict"`
		Cause   struct {
			Kind, Path, Text string
			Support          []string
		}
		Resources []struct {
			InstanceID string `json:"instance_id"`
			Found      bool   `json:"found"`
		} `json:"resources"`
		Evidence struct {
			Events []json.RawMessage `json:"events"`
		} `json:"evidence"`
		Telemetry map[string]json.RawMessage `json:"telemetry"`
		Host      struct {
			Findings []struct{ Kind, Path string } `json:"findings"`
		} `json:"host"`
	}
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("analyze --json output is not one object: %v\n%s", err, out)
	}
	if a.CaseID != "13051177299-1" || a.Verdict != "confirmed" || a.Cause.Path != script ||
		len(a.Resources) != 1 || a.Resources[0].InstanceID != "i-0a1b2c3d4e5f60718" || !a.Resources[0].Found {
		t.Errorf("analyze --json = case %s, verdict %s, cause %+v, resources %+v; want confirmed, the script, the instance",
			a.CaseID, a.Verdict, a.Cause, a.Resources)
	}
	if len(a.Cause.Support) == 0 || !strings.Contains(a.Cause.Support[0], accessLog) {
		t.Errorf("cause.support = %q, want the access-log lines that drove the script", a.Cause.Support)
	}
	if len(a.Evidence.Events) != 3 || a.Telemetry["flow_logs"] == nil || len(a.Host.Findings) != 2 {
		t.Errorf("evidence %d events, telemetry %v, host findings %+v; want 3, flow_logs, the script and its requests",
			len(a.Evidence.Events), a.Telemetry, a.Host.Findings)
	}

	code, out, errOut = runCmd(t, "collect", "--json", "--config", cfg, "testdata/seed-notice.eml")
	var c struct {
		Findings []struct {
			Kind, Path, Reason string
			Line, Count        int
		} `json:"findings"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &c) != nil || len(c.Findings) != 2 ||
		c.Findings[0].Kind != "script" || c.Findings[0].Path != script ||
		c.Findings[1].Kind != "request" || c.Findings[1].Path != accessLog || c.Findings[1].Count != 3 {
		t.Errorf("collect --json: exit %d, stdout %s, stderr %q; want the script and 3 requests", code, out, errOut)
	}
}

// TestAnalyzeWithoutAWS: no [aws] section, the analysis still exits 0,
// says why EC2 is missing, and reads the host.
func TestAnalyzeWithoutAWS(t *testing.T) {
	webRoot, accessLog, script := seedHost(t)
	cfg := hostConfigFile(t, "", webRoot, accessLog)
	code, out, errOut := runCmd(t, "analyze", "--config", cfg, "testdata/seed-notice.eml")
	if code != 0 || !strings.Contains(out, "verdict: confirmed") || !strings.Contains(out, script) ||
		!strings.Contains(out, "AWS not consulted") {
		t.Errorf("analyze without AWS: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "analyze", "--config", cfg, "no-such-case"); code != 1 || !strings.Contains(errOut, "no such file or case") {
		t.Errorf("analyze no-such-case: exit %d, stderr %q; want 1 and the reason", code, errOut)
	}
	if code, _, _ := runCmd(t, "analyze", "--config", filepath.Join(t.TempDir(), "missing.toml"), "testdata/seed-notice.eml"); code != 2 {
		t.Errorf("analyze with a missing --config: exit %d, want 2", code)
	}
}
