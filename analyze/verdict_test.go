package analyze

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/analyze/cloud"
	"github.com/abuse-responder/abuse-responder/analyze/evidence"
	"github.com/abuse-responder/abuse-responder/analyze/host"
)

var target = abuse.Target{IP: netip.MustParseAddr("203.0.113.44"), Port: 443, Protocol: "tcp"}

func TestDecide(t *testing.T) {
	ours := netip.MustParseAddr("198.51.100.9")
	direct := evidence.Result{Events: []evidence.Event{{Source: ours, Dest: target.IP}}}
	viaXFF := evidence.Result{Events: []evidence.Event{{Source: ours, ViaForwardedHeader: true}, {ViaForwardedHeader: true}}}
	covered := cloud.Telemetry{LogGroup: "flows", Covered: true, Records: 120}
	seen := cloud.Telemetry{LogGroup: "flows", Covered: true, Records: 120,
		Flows: []cloud.FlowStats{{Target: "203.0.113.44", Port: 443, Protocol: "tcp", Accepted: 30}}}
	script := host.Finding{Kind: "script", Path: "/var/www/html/x.php", Line: 3, Reason: "contains target 203.0.113.44 and a curl_multi loop"}
	scriptOther := host.Finding{Kind: "script", Path: "/var/www/html/y.php", Line: 1, Reason: "contains 203.0.113.45"}
	socket := host.Finding{Kind: "socket", PID: 42, Reason: "ESTABLISHED 10.0.0.5:41234 → 203.0.113.44:443 by pid 42 (php)"}

	tests := []struct {
		name string
		a    Analysis
		want Verdict
		why  string
	}{
		{"flow records to a target", Analysis{Evidence: direct, Telemetry: Telemetry{FlowLogs: []cloud.Telemetry{seen}}}, Confirmed, "30 accepted"},
		{"a socket to a target", Analysis{Host: Host{Collected: true, Findings: []host.Finding{socket}}}, Confirmed, "connection to a target"},
		{"a script naming a target", Analysis{Host: Host{Collected: true, Findings: []host.Finding{script}}}, Confirmed, "/var/www/html/x.php"},
		{"a script naming another address", Analysis{Host: Host{Collected: true, Findings: []host.Finding{scriptOther}}}, Inconclusive, "nothing aimed"},
		{"forwarded-for only beats covered flow logs", Analysis{Evidence: viaXFF, Telemetry: Telemetry{FlowLogs: []cloud.Telemetry{covered}}}, LikelySpoofed, "X-Forwarded-For"},
		{"confirmed beats forwarded-for", Analysis{Evidence: viaXFF, Telemetry: Telemetry{FlowLogs: []cloud.Telemetry{seen}}}, Confirmed, "accepted"},
		{"covered and silent", Analysis{Evidence: direct, Telemetry: Telemetry{FlowLogs: []cloud.Telemetry{covered}}}, NotReproduced, "120 records"},
		{"flow logs not covering", Analysis{Evidence: direct, Telemetry: Telemetry{FlowLogs: []cloud.Telemetry{{LogGroup: "flows"}}}}, Inconclusive, "no telemetry"},
		{"host only, nothing found", Analysis{Evidence: direct, Host: Host{Collected: true}}, Inconclusive, "host shows nothing"},
		{"nothing at all", Analysis{Evidence: direct}, Inconclusive, "no telemetry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.a.Targets = []abuse.Target{target}
			got, why := decide(&tt.a)
			if got != tt.want || !strings.Contains(why, tt.why) {
				t.Errorf("decide() = %s (%s), want %s with %q", got, why, tt.want, tt.why)
			}
		})
	}
}

func TestContainsWord(t *testing.T) {
	tests := []struct {
		text, s string
		want    bool
	}{
		{"contains 203.0.113.8 and more", "203.0.113.8", true},
		{"contains 203.0.113.88", "203.0.113.8", false},
		{"contains 1203.0.113.8", "203.0.113.8", false},
		{"ends with 203.0.113.8.", "203.0.113.8", true},
		{"203.0.113.8.1", "203.0.113.8", false},
		{"first 203.0.113.88 then 203.0.113.8", "203.0.113.8", true},
		{"posts to shop.example.org/wp-login.php", "shop.example.org", true},
		{"posts to myshop.example.org", "shop.example.org", false},
	}
	for _, tt := range tests {
		if got := containsWord(tt.text, tt.s); got != tt.want {
			t.Errorf("containsWord(%q, %q) = %v, want %v", tt.text, tt.s, got, tt.want)
		}
	}
}

func TestFindCause(t *testing.T) {
	findings := []host.Finding{
		{Kind: "script", Path: "/var/www/html/wp-content/uploads/2026/04/cache.php", Line: 7, Reason: "a curl_multi loop posting to https://203.0.113.44/wp-login.php"},
		{Kind: "request", Path: "/var/log/apache2/access.log", Line: 120, Count: 12, Reason: "12 requests to flagged script /wp-content/uploads/2026/04/cache.php from 192.0.2.9"},
		{Kind: "request", Path: "/var/log/apache2/access.log", Line: 5, Count: 1, Reason: "1 request in the window containing 203.0.113.44"},
		{Kind: "cron", Path: "/var/spool/cron/crontabs/www-data", Line: 1, Reason: "www-data pipes curl into sh"},
	}
	c := findCause(findings, abuse.TypeIntrusion)
	if c.Kind != "compromised-web-app" || c.Path != findings[0].Path || !strings.Contains(c.Text, findings[0].Path) {
		t.Fatalf("findCause() = %+v, want the script at fault", c)
	}
	joined := strings.Join(c.Support, "\n")
	for _, want := range []string{"access.log:120: 12 requests", "www-data:1"} {
		if !strings.Contains(joined, want) {
			t.Errorf("findCause().Support = %q, want a line with %q", c.Support, want)
		}
	}
	if strings.Contains(joined, "access.log:5") {
		t.Errorf("findCause().Support = %q: the unrelated request finding is not support for the script", c.Support)
	}

	miner := findCause([]host.Finding{{Kind: "process", Path: "/tmp/.x/xmrig", PID: 7, Reason: "known miner xmrig"}}, abuse.TypeCryptoMining)
	if miner.Kind != "miner" || miner.Path != "/tmp/.x/xmrig" {
		t.Errorf("findCause(process) = %+v, want a miner at /tmp/.x/xmrig", miner)
	}
	if c := findCause(nil, abuse.TypeOpenProxy); c.Kind != "open-proxy" {
		t.Errorf("findCause(nil, open-proxy) = %+v", c)
	}
	if c := findCause(nil, abuse.TypePortScan); c.Kind != "unknown" || c.Support == nil {
		t.Errorf("findCause(nil, port-scanning) = %+v, want unknown with an empty support list", c)
	}
}

func TestWindow(t *testing.T) {
	at := time.Date(2026, 4, 14, 1, 47, 2, 0, time.UTC)
	ref := time.Date(2026, 4, 14, 3, 12, 9, 0, time.UTC)
	if w := window(abuse.Notice{AbuseTime: &at}, evidence.Result{}, time.Hour, ref); !w.From.Equal(at.Add(-time.Hour)) || !w.To.Equal(at.Add(time.Hour)) {
		t.Errorf("window(abuse time) = %+v", w)
	}
	t1, t2 := at.Add(-10*time.Minute), at.Add(5*time.Minute)
	ev := evidence.Result{Events: []evidence.Event{{Time: &t2}, {}, {Time: &t1}}}
	if w := window(abuse.Notice{}, ev, time.Hour, ref); !w.From.Equal(t1.Add(-time.Hour)) || !w.To.Equal(t2.Add(time.Hour)) {
		t.Errorf("window(event times) = %+v, want %v … %v ± 1h", w, t1, t2)
	}
	if w := window(abuse.Notice{}, evidence.Result{}, time.Hour, ref); !w.From.Equal(ref.Add(-25*time.Hour)) || !w.To.Equal(ref.Add(time.Hour)) {
		t.Errorf("window(nothing) = %+v, want the day before the mail ± 1h", w)
	}
}

func TestFindCauseListener(t *testing.T) {
	squid := host.Finding{Kind: "socket", Path: "/usr/sbin/squid", PID: 812, Listen: "0.0.0.0:3128",
		Reason: "LISTEN 0.0.0.0:3128 by pid 812 (/usr/sbin/squid -N): reachable from anywhere, the port the report names"}
	squidProc := host.Finding{Kind: "process", Path: "/usr/sbin/squid", PID: 812, Listen: "0.0.0.0:3128",
		Reason: "pid 812 (/usr/sbin/squid -N): the proxy software squid listening on 0.0.0.0:3128 (reachable from anywhere)"}
	rpcbind := host.Finding{Kind: "socket", Path: "/usr/sbin/rpcbind", PID: 611, Listen: "[::]:111",
		Reason: "LISTEN [::]:111 by pid 611 (/sbin/rpcbind -f -w): reachable from anywhere, the port the report names"}
	unowned := host.Finding{Kind: "socket", Path: "/proc/net", Listen: "10.0.1.5:8080",
		Reason: "LISTEN 10.0.1.5:8080 (no process found): reachable from other hosts on that address, a common proxy port"}
	script := host.Finding{Kind: "script", Path: "/var/www/html/up.php", Line: 2, Reason: "eval(base64_decode(…))"}

	tests := []struct {
		name     string
		findings []host.Finding
		t        abuse.Type
		kind     string
		path     string
		text     string
		support  string
	}{
		{"open proxy: the socket leads, the process supports", []host.Finding{squidProc, squid}, abuse.TypeOpenProxy,
			"open-proxy", "/usr/sbin/squid", "an open proxy: squid (pid 812) listens on 0.0.0.0:3128, reachable from anywhere", "proxy software squid"},
		{"open proxy found by name only", []host.Finding{squidProc}, abuse.TypeOpenProxy,
			"open-proxy", "/usr/sbin/squid", "an open proxy: squid (pid 812) listens on 0.0.0.0:3128", "proxy software squid"},
		{"exposed service", []host.Finding{rpcbind}, abuse.TypeVulnerability,
			"exposed-service", "/usr/sbin/rpcbind", "an exposed service: rpcbind (pid 611) listens on [::]:111, reachable from anywhere", "LISTEN [::]:111"},
		{"listener without its process", []host.Finding{unowned}, abuse.TypeOpenProxy,
			"open-proxy", "", "listens on 10.0.1.5:8080, reachable from other hosts", "no process found"},
		{"a script still wins", []host.Finding{script, squid}, abuse.TypeOpenProxy,
			"compromised-web-app", "/var/www/html/up.php", "/var/www/html/up.php", "LISTEN 0.0.0.0:3128"},
		// Other types: a listening socket is no connection to a target.
		{"listener on an intrusion notice", []host.Finding{unowned}, abuse.TypeIntrusion,
			"unknown", "", "no cause found", ""},
		{"proxy process on a port-scan notice", []host.Finding{squidProc}, abuse.TypePortScan,
			"open-proxy", "/usr/sbin/squid", "a process on the host: /usr/sbin/squid (pid 812", "proxy software squid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := findCause(tt.findings, tt.t)
			if c.Kind != tt.kind || c.Path != tt.path || !strings.Contains(c.Text, tt.text) {
				t.Errorf("findCause() = %+v, want kind %s, path %q, text with %q", c, tt.kind, tt.path, tt.text)
			}
			if !strings.Contains(strings.Join(c.Support, "\n"), tt.support) {
				t.Errorf("findCause().Support = %q, want a line with %q", c.Support, tt.support)
			}
		})
	}

	// A listener does not confirm traffic to a target.
	a := Analysis{Targets: []abuse.Target{target}, Host: Host{Collected: true, Findings: []host.Finding{squid, squidProc}}}
	if v, why := decide(&a); v != Inconclusive {
		t.Errorf("decide(listeners only) = %s (%s), want inconclusive", v, why)
	}
}

func TestOwnPorts(t *testing.T) {
	ours := []abuse.Resource{{InstanceID: "i-0d2e4f6a8b0c1d3e5", PublicIP: "198.51.100.150"}}
	connectTarget := []abuse.Target{{IP: netip.MustParseAddr("192.0.2.200"), Port: 25}}
	// The forwarded part of s05-open-proxy.eml.
	s05 := "Open HTTP proxy confirmed: CONNECT 192.0.2.200:25 via 198.51.100.150:3128 succeeded (HTTP/1.1 200 Connection established)\n" +
		"Checked 2026-04-02T02:21:07Z from 192.0.2.15; also listening: 8080/tcp\n"
	// The forwarded part of s11-vulnerability.eml.
	s11 := "Systems answering Portmapper (111/udp) requests from the Internet can be abused for reflection DDoS.\n" +
		"ip | asn | timestamp (UTC)\n198.51.100.140 | 16509 | 2026-04-14 21:33:05\n"
	tests := []struct {
		name    string
		n       abuse.Notice
		want    []uint16
		guessed bool
	}{
		{"open proxy", abuse.Notice{Type: abuse.TypeOpenProxy, Resources: ours, Targets: connectTarget, Evidence: s05}, []uint16{3128, 8080}, false},
		{"open proxy, our address unknown", abuse.Notice{Type: abuse.TypeOpenProxy, Targets: connectTarget, Evidence: s05}, []uint16{3128, 8080}, false},
		{"another address's port is not ours", abuse.Notice{Type: abuse.TypeOpenProxy, Resources: ours,
			Evidence: "Open proxy at 198.51.100.99:3128"}, commonProxyPorts, true},
		{"open proxy naming no port", abuse.Notice{Type: abuse.TypeOpenProxy, Resources: ours, Evidence: "open proxy"}, commonProxyPorts, true},
		{"vulnerability", abuse.Notice{Type: abuse.TypeVulnerability, Evidence: s11}, []uint16{111}, false},
		{"vulnerability naming no port", abuse.Notice{Type: abuse.TypeVulnerability, Evidence: "weak TLS"}, nil, false},
		{"other types have none", abuse.Notice{Type: abuse.TypeIntrusion, Resources: ours, Evidence: "from 198.51.100.150:51234 to 203.0.113.44:22/tcp"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, guessed := ownPorts(tt.n, evidence.Parse(tt.n.Evidence, time.Now()), nil)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || guessed != tt.guessed {
				t.Errorf("ownPorts() = %v, %v; want %v, %v", got, guessed, tt.want, tt.guessed)
			}
		})
	}
}

// TestAnalyzeOpenProxy: an open-proxy report names our address and a
// port, and this test listens there on the wildcard address: the cause is
// the listening process, this test's executable.
func TestAnalyzeOpenProxy(t *testing.T) {
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	at := time.Date(2026, 4, 2, 2, 21, 7, 0, time.UTC)
	date := at.Add(19 * time.Minute)
	n := abuse.Notice{
		Provider: "aws", Stage: abuse.StageNotice, CaseID: "12801955302", AccountID: "111122223333",
		Type: abuse.TypeOpenProxy, ReportedActivity: "Open Proxy", Regions: []string{"ap-northeast-1"},
		Resources: []abuse.Resource{{InstanceID: "i-0d2e4f6a8b0c1d3e5", PublicIP: "198.51.100.151", Region: "ap-northeast-1"}},
		AbuseTime: &at, Date: &date,
		Targets:  []abuse.Target{{IP: netip.MustParseAddr("192.0.2.200"), Port: 25}},
		Evidence: fmt.Sprintf("Open HTTP proxy confirmed on 198.51.100.151:%d (CONNECT 192.0.2.200:25 succeeded, HTTP/1.1 200 Connection established)\nChecked 2026-04-02T02:21:07Z from 192.0.2.15\n", port),
	}
	webRoot, accessLog := hostTree(t, false)
	a := New(testConfig(nil, webRoot, accessLog), nil).Analyze(context.Background(), n)

	exe, _ := os.Executable()
	bound := fmt.Sprintf("0.0.0.0:%d", port)
	if a.Cause.Kind != "open-proxy" || a.Cause.Path != exe ||
		!strings.Contains(a.Cause.Text, fmt.Sprintf("(pid %d) listens on %s, reachable from anywhere", os.Getpid(), bound)) {
		t.Errorf("Cause = %+v, want open-proxy: %s (pid %d) listening on %s", a.Cause, exe, os.Getpid(), bound)
	}
	if !strings.Contains(strings.Join(a.Cause.Support, "\n"), "LISTEN "+bound) {
		t.Errorf("Cause.Support = %q, want the listener's finding", a.Cause.Support)
	}
	if a.Verdict == Confirmed {
		t.Errorf("Verdict = %s (%s): a listener is no traffic to the CONNECT target", a.Verdict, a.Why)
	}
}
