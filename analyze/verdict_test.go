package analyze

import (
	"net/netip"
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
