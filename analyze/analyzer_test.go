package analyze

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/internal/awstest"
)

// The seed's case: our instance brute-forces the login page of
// shop.example.org through a script dropped into its web root.
var (
	abuseAt  = time.Date(2026, 4, 14, 1, 47, 2, 0, time.UTC)
	mailDate = time.Date(2026, 4, 14, 3, 12, 9, 0, time.UTC)
	victim   = netip.MustParseAddr("203.0.113.44")
)

const seedEvidence = `Source IP: 198.51.100.7   Target: shop.example.org (203.0.113.44:443)   Time zone: UTC
198.51.100.7 - - [14/Apr/2026:01:46:58 +0000] "POST /wp-login.php HTTP/1.1" 200 4521 "-" "Mozilla/5.0"
198.51.100.7 - - [14/Apr/2026:01:47:00 +0000] "POST /wp-login.php HTTP/1.1" 200 4521 "-" "Mozilla/5.0"
198.51.100.7 - - [14/Apr/2026:01:47:02 +0000] "POST /wp-login.php HTTP/1.1" 200 4521 "-" "Mozilla/5.0"
`

func seedNotice(evidence string) abuse.Notice {
	return abuse.Notice{
		Provider: "aws", Stage: abuse.StageNotice, CaseID: "13051177201-1", AccountID: "111122223333",
		Type: abuse.TypeIntrusion, ReportedActivity: "Intrusion Attempts", Regions: []string{"eu-central-1"},
		Resources: []abuse.Resource{{InstanceID: "i-0a1b2c3d4e5f60718", PublicIP: "198.51.100.7", Region: "eu-central-1"}},
		AbuseTime: &abuseAt, Date: &mailDate,
		Targets:     []abuse.Target{{IP: victim, Port: 443, Protocol: "tcp"}},
		TargetHosts: []string{"shop.example.org"},
		Evidence:    evidence,
	}
}

// seedFake is the account as EC2 shows it: the instance in a subnet whose
// flow log goes to CloudWatch Logs.
func seedFake(t *testing.T, flows ...string) *awstest.EC2Fake {
	t.Helper()
	awstest.Env(t)
	f := awstest.SeedWorld(t, awstest.SeedOptions{Tags: map[string]string{"Name": "shop-web-1"},
		GroupEgress: []awstest.SGRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}})
	f.AddFlowLog(awstest.FlowLog{ID: "fl-1", ResourceID: "subnet-a", LogGroup: "vpc-flow"})
	for i, dst := range flows {
		end := abuseAt.Add(time.Duration(i-len(flows)/2) * time.Minute)
		f.PutLogEvents("vpc-flow", awstest.LogEvent{Stream: "eni-web-all", Timestamp: end,
			Message: fmt.Sprintf("2 111122223333 eni-web 10.0.1.5 %s 40000 443 6 10 5400 %d %d ACCEPT OK",
				dst, end.Add(-time.Minute).Unix(), end.Unix())})
	}
	return f
}

// hostTree builds a web root and an access log; infected adds the script
// at fault and the requests that drove it.
func hostTree(t *testing.T, infected bool) (webRoot, accessLog string) {
	t.Helper()
	dir := t.TempDir()
	webRoot = filepath.Join(dir, "www", "html")
	write(t, filepath.Join(webRoot, "index.php"), "<?php\ndefine('WP_USE_THEMES', true);\nrequire __DIR__ . '/wp-blog-header.php';\n")
	var log strings.Builder
	log.WriteString(`192.0.2.50 - - [14/Apr/2026:01:30:00 +0000] "GET / HTTP/1.1" 200 5120 "-" "Mozilla/5.0"` + "\n")
	if infected {
		write(t, filepath.Join(webRoot, "wp-content", "uploads", "2026", "04", "cache.php"), `<?php
$mh = curl_multi_init();
foreach (file('/tmp/.p') as $pw) {
  $ch = curl_init('https://203.0.113.44/wp-login.php');
  curl_setopt($ch, CURLOPT_POSTFIELDS, 'log=admin&pwd=' . trim($pw));
  curl_multi_add_handle($mh, $ch);
}
do { curl_multi_exec($mh, $running); } while ($running);
`)
		for _, at := range []string{"01:40:11", "01:44:53", "01:46:40"} {
			fmt.Fprintf(&log, `192.0.2.9 - - [14/Apr/2026:%s +0000] "POST /wp-content/uploads/2026/04/cache.php HTTP/1.1" 200 12 "-" "python-requests/2.31"`+"\n", at)
		}
	}
	accessLog = filepath.Join(dir, "log", "access.log")
	write(t, accessLog, log.String())
	// The log was written at the time of its last line, as a live one is.
	os.Chtimes(accessLog, abuseAt, abuseAt)
	return webRoot, accessLog
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func testConfig(f *awstest.EC2Fake, webRoot, accessLog string) Config {
	cfg := Config{
		HostMode: HostLocal, WebRoots: []string{webRoot}, AccessLogs: []string{accessLog}, ModsecLogs: []string{},
		CronPaths: []string{}, UnitDirs: []string{}, Now: func() time.Time { return mailDate },
	}
	if f != nil {
		cfg.Accounts = []Account{{ID: "111122223333"}}
		cfg.EndpointURL, cfg.MaxAttempts = f.URL(), 1
	}
	return cfg
}

func TestAnalyzeSeedCase(t *testing.T) {
	f := seedFake(t, "203.0.113.44", "203.0.113.44", "203.0.113.44", "192.0.2.1")
	webRoot, accessLog := hostTree(t, true)
	a := New(testConfig(f, webRoot, accessLog), nil).Analyze(context.Background(), seedNotice(seedEvidence))

	if a.Verdict != Confirmed {
		t.Errorf("Verdict = %s (%s), want confirmed", a.Verdict, a.Why)
	}
	script := filepath.Join(webRoot, "wp-content", "uploads", "2026", "04", "cache.php")
	if a.Cause.Kind != "compromised-web-app" || a.Cause.Path != script {
		t.Errorf("Cause = %+v, want the script %s", a.Cause, script)
	}
	if !strings.Contains(strings.Join(a.Cause.Support, "\n"), accessLog) {
		t.Errorf("Cause.Support = %q, want the access-log requests to the script", a.Cause.Support)
	}
	if len(a.Resources) != 1 || !a.Resources[0].Found || a.Resources[0].InstanceID != "i-0a1b2c3d4e5f60718" ||
		a.Resources[0].NetworkACL == nil || a.Resources[0].NetworkACL.ID != "acl-a" {
		t.Errorf("Resources = %+v, want the instance with its ACL", a.Resources)
	}
	if len(a.Telemetry.FlowLogs) != 1 || len(a.Telemetry.FlowLogs[0].Flows) != 1 ||
		a.Telemetry.FlowLogs[0].Flows[0].Accepted != 3 || a.Telemetry.FlowLogs[0].Flows[0].Target != "203.0.113.44" {
		t.Errorf("Telemetry = %+v, want three accepted records to 203.0.113.44 only", a.Telemetry)
	}
	if len(a.Evidence.Events) != 3 || len(a.Evidence.Summaries) == 0 {
		t.Errorf("Evidence = %d events, %d summaries; want the 3 report lines summarised", len(a.Evidence.Events), len(a.Evidence.Summaries))
	}
	if len(a.Problems) != 0 {
		t.Errorf("Problems = %q, want none", a.Problems)
	}
	lines := strings.Join(a.SummaryLines(), "\n")
	for _, want := range []string{"verdict: confirmed", script, "instance i-0a1b2c3d4e5f60718", "flow logs: 203.0.113.44 port 443/tcp: 3 accepted"} {
		if !strings.Contains(lines, want) {
			t.Errorf("SummaryLines() lack %q:\n%s", want, lines)
		}
	}
	reply := strings.Join(a.ReplyLines(), "\n")
	if !strings.Contains(reply, "confirm the reported activity") || !strings.Contains(reply, "cache.php") {
		t.Errorf("ReplyLines() = %q, want the confirmation and the script", reply)
	}
}

func TestAnalyzeNotReproduced(t *testing.T) {
	// The flow log has records of the instance in the window, none to the
	// target, and the host is clean.
	f := seedFake(t, "192.0.2.1", "192.0.2.2")
	webRoot, accessLog := hostTree(t, false)
	a := New(testConfig(f, webRoot, accessLog), nil).Analyze(context.Background(), seedNotice(seedEvidence))
	if a.Verdict != NotReproduced || a.Cause.Kind != "unknown" {
		t.Errorf("Analyze = %s (%s), cause %s; want not-reproduced, unknown", a.Verdict, a.Why, a.Cause.Kind)
	}
}

func TestAnalyzeLikelySpoofed(t *testing.T) {
	f := seedFake(t, "192.0.2.1")
	webRoot, accessLog := hostTree(t, false)
	xff := `Target: shop.example.org (203.0.113.44:443)   Time zone: UTC
192.0.2.200 - - [14/Apr/2026:01:46:58 +0000] "POST /wp-login.php HTTP/1.1" 200 4521 "-" "Mozilla/5.0" "198.51.100.7"
X-Forwarded-For: 198.51.100.7
`
	a := New(testConfig(f, webRoot, accessLog), nil).Analyze(context.Background(), seedNotice(xff))
	if a.Verdict != LikelySpoofed {
		t.Errorf("Analyze = %s (%s), want likely-spoofed; events %+v", a.Verdict, a.Why, a.Evidence.Events)
	}
}

func TestAnalyzeWithoutAWS(t *testing.T) {
	webRoot, accessLog := hostTree(t, true)
	a := New(testConfig(nil, webRoot, accessLog), nil).Analyze(context.Background(), seedNotice(seedEvidence))
	if a.Verdict != Confirmed || !a.Host.Collected || len(a.Resources) != 0 {
		t.Errorf("Analyze = %s (%s), host %v, %d resources; want confirmed from the host alone", a.Verdict, a.Why, a.Host.Collected, len(a.Resources))
	}
	if len(a.Problems) != 1 || !strings.Contains(a.Problems[0], "no [[aws.accounts]]") {
		t.Errorf("Problems = %q, want the missing AWS part named", a.Problems)
	}
}

func TestAnalyzeAWSUnreachable(t *testing.T) {
	awstest.Env(t)
	webRoot, accessLog := hostTree(t, false)
	cfg := testConfig(nil, webRoot, accessLog)
	cfg.Accounts, cfg.EndpointURL, cfg.MaxAttempts = []Account{{ID: "111122223333"}}, "http://127.0.0.1:1", 1
	a := New(cfg, nil).Analyze(context.Background(), seedNotice(seedEvidence))
	if a.Verdict != Inconclusive || len(a.Problems) == 0 || !strings.Contains(a.Problems[0], "resolve i-0a1b2c3d4e5f60718") {
		t.Errorf("Analyze = %s, problems %q; want inconclusive with the failed lookup named", a.Verdict, a.Problems)
	}
}

func TestHostModeAuto(t *testing.T) {
	webRoot, accessLog := hostTree(t, true)
	cfg := testConfig(nil, webRoot, accessLog)
	cfg.HostMode = HostAuto
	cfg.Identity = func(context.Context) string { return "i-0fffffffffffffff0" }
	a := New(cfg, nil).Analyze(context.Background(), seedNotice(seedEvidence))
	if a.Host.Collected || !strings.Contains(a.Host.Note, "not the implicated instance") {
		t.Errorf("Host = %+v, want no collection on another instance", a.Host)
	}
	cfg.Identity = func(context.Context) string { return "i-0a1b2c3d4e5f60718" }
	if a := New(cfg, nil).Analyze(context.Background(), seedNotice(seedEvidence)); !a.Host.Collected {
		t.Errorf("Host = %+v, want collection on the implicated instance", a.Host)
	}
}
