package evidence

import (
	"net/netip"
	"os"
	"testing"
	"time"
)

// The extracts of the fifteen AWS sample notices (the text after AWS's
// delimiter, decoded), checked for the facts a person reads in them. The
// expectations were worked out by hand from the samples and FORMATS.md.

// want is one expected event, by the fields that matter for the sample.
type want struct {
	line          int
	family, what  string
	time          string // RFC 3339, "" for none
	source, dest  string
	destHost      string
	port          uint16
	proto, detail string
	count         int
	via           bool
}

func TestSamples(t *testing.T) {
	tests := []struct {
		name            string
		ref             string // the notice mail's Date
		lines, unparsed int
		events          []want
		summaries       []string // Summary.Text in order
	}{
		// The extract starts at "Hello,"; the rows are lines 5 to 8.
		{"s01", "2026-04-14T03:12:09Z", 8, 4, []want{
			{line: 5, family: "portscan", what: "port-probe", source: "198.51.100.23", dest: "203.0.113.10", port: 23, proto: "tcp"},
			{line: 6, family: "portscan", what: "port-probe", source: "198.51.100.23", dest: "203.0.113.10", port: 2323, proto: "tcp"},
			{line: 7, family: "portscan", what: "port-probe", source: "198.51.100.23", dest: "203.0.113.11", port: 445, proto: "tcp"},
			{line: 8, family: "portscan", what: "port-probe", source: "198.51.100.23", dest: "203.0.113.12", port: 5900, proto: "tcp"},
		}, []string{
			"1 port probe of 203.0.113.10:23/tcp", "1 port probe of 203.0.113.10:2323/tcp",
			"1 port probe of 203.0.113.11:445/tcp", "1 port probe of 203.0.113.12:5900/tcp",
		}},
		// Syslog lines without a year or zone: the mail's year and the
		// stated +0200; three ssh events and the fail2ban ban.
		{"s02", "2026-04-08T17:40:55Z", 8, 3, []want{
			{line: 4, family: "fail2ban", what: "reported", source: "198.51.100.41"},
			{line: 6, family: "sshd", what: "ssh-invalid-user", time: "2026-04-08T16:59:01Z", source: "198.51.100.41", detail: "oracle"},
			{line: 7, family: "sshd", what: "ssh-login-failure", time: "2026-04-08T16:59:03Z", source: "198.51.100.41", detail: "oracle"},
			{line: 8, family: "sshd", what: "ssh-login-failure", time: "2026-04-08T16:59:07Z", source: "198.51.100.41", detail: "root"},
			{line: 9, family: "fail2ban", what: "ban", time: "2026-04-08T16:59:08Z", source: "198.51.100.41", detail: "sshd"},
		}, []string{
			"1 abuse report", "1 SSH login with an invalid user, at 16:59 UTC", "2 SSH login failures, at 16:59 UTC", "1 fail2ban ban, at 16:59 UTC",
		}},
		// ">>>" closes the quote: a blank line, not counted.
		{"s03", "2026-04-10T09:05:31Z", 3, 1, []want{
			{line: 2, family: "flow", what: "connection", time: "2026-04-10T07:31:00Z", source: "198.51.100.77", dest: "203.0.113.80", port: 80, proto: "udp"},
			{line: 3, family: "flow", what: "connection", time: "2026-04-10T07:31:00Z", source: "198.51.100.77", dest: "203.0.113.80", port: 443, proto: "tcp"},
		}, []string{"1 connection to 203.0.113.80:80/udp, at 07:31 UTC", "1 connection to 203.0.113.80:443/tcp, at 07:31 UTC"}},
		// The Target line names the reporter's server for the two lines after it.
		{"s04", "2026-04-20T22:18:40Z", 3, 1, []want{
			{line: 2, family: "access", what: "http-request", time: "2026-04-20T21:02:13Z", source: "198.51.100.9", dest: "203.0.113.44", destHost: "shop.example.org", port: 443,
				detail: "GET /index.php?id=1%27%20UNION%20SELECT%201,2,3--"},
			{line: 3, family: "modsec", what: "waf-block", time: "2026-04-20T21:02:13Z", source: "198.51.100.9", dest: "203.0.113.44", destHost: "shop.example.org", port: 443,
				detail: "SQL Injection Attack Detected via libinjection [id 942100]"},
		}, []string{
			"1 HTTP request to shop.example.org (203.0.113.44:443), at 21:02 UTC",
			"1 WAF block on shop.example.org (203.0.113.44:443), at 21:02 UTC",
		}},
		// An open-proxy check is prose, not a log line.
		{"s05", "2026-04-02T02:40:12Z", 2, 2, nil, nil},
		{"s06", "2026-04-11T13:00:02Z", 6, 4, []want{
			{line: 1, family: "received", what: "spam-delivery", time: "2026-04-11T10:41:09Z", source: "198.51.100.88", destHost: "mx.example.org", detail: "helo mail.example.net"},
		}, []string{"1 spam delivery to mx.example.org, at 10:41 UTC"}},
		{"s07", "2026-03-30T08:15:44Z", 2, 2, nil, nil},
		{"s08", "2026-04-05T04:05:05Z", 1, 1, nil, nil},
		{"s09", "2026-04-07T15:30:00Z", 4, 4, nil, nil},
		// UFW lines in JST (stated after them), and a mining-pool flow.
		{"s10", "2026-04-23T13:24:00Z", 3, 0, []want{
			{line: 1, family: "firewall", what: "blocked-packet", time: "2026-04-23T11:50:31Z", source: "198.51.100.31", dest: "203.0.113.7", port: 6379, proto: "tcp"},
			{line: 2, family: "firewall", what: "blocked-packet", time: "2026-04-23T11:50:32Z", source: "198.51.100.31", dest: "203.0.113.7", port: 2375, proto: "tcp"},
			{line: 3, family: "flow", what: "connection", source: "198.51.100.31", dest: "192.0.2.250", port: 3333, proto: "tcp"},
		}, []string{
			"1 blocked packet to 203.0.113.7:6379/tcp, at 11:50 UTC", "1 blocked packet to 203.0.113.7:2375/tcp, at 11:50 UTC",
			"1 connection to 192.0.2.250:3333/tcp",
		}},
		{"s11", "2026-04-15T06:00:00Z", 3, 2, []want{
			{line: 3, family: "vuln-row", what: "vulnerable-service", time: "2026-04-14T21:33:05Z", source: "198.51.100.140", detail: "AS16509"},
		}, []string{"1 vulnerable service report, at 21:33 UTC"}},
		{"s12", "2026-04-09T18:10:00Z", 0, 0, nil, nil},
		{"s13", "2026-04-15T03:20:00Z", 2, 1, []want{
			{line: 2, family: "portscan", what: "port-probe", source: "198.51.100.23", dest: "203.0.113.10", port: 23, proto: "tcp"},
		}, []string{"1 port probe of 203.0.113.10:23/tcp"}},
		{"s14", "2026-04-16T04:00:00Z", 0, 0, nil, nil},
		{"s15", "2026-04-03T01:02:03Z", 1, 1, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := os.ReadFile("testdata/samples/" + tt.name + ".txt")
			if err != nil {
				t.Fatal(err)
			}
			ref, err := time.Parse(time.RFC3339, tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			res := Parse(string(raw), ref)
			if res.Lines != tt.lines || res.Unparsed != tt.unparsed {
				t.Errorf("Parse(%s) lines, unparsed = %d, %d, want %d, %d", tt.name, res.Lines, res.Unparsed, tt.lines, tt.unparsed)
			}
			if len(res.Events) != len(tt.events) {
				t.Errorf("Parse(%s) gave %d events, want %d: %+v", tt.name, len(res.Events), len(tt.events), res.Events)
			}
			for i := 0; i < min(len(res.Events), len(tt.events)); i++ {
				checkEvent(t, tt.name, i, res.Events[i], tt.events[i])
			}
			var texts []string
			for _, s := range res.Summaries {
				texts = append(texts, s.Text)
			}
			if len(texts) != len(tt.summaries) {
				t.Errorf("Parse(%s) summaries = %q, want %q", tt.name, texts, tt.summaries)
				return
			}
			for i := range texts {
				if texts[i] != tt.summaries[i] {
					t.Errorf("Parse(%s) summary %d = %q, want %q", tt.name, i, texts[i], tt.summaries[i])
				}
			}
		})
	}
}

func checkEvent(t *testing.T, name string, i int, got Event, w want) {
	t.Helper()
	addr := func(s string) netip.Addr {
		if s == "" {
			return netip.Addr{}
		}
		return netip.MustParseAddr(s)
	}
	gotTime := ""
	if got.Time != nil {
		gotTime = got.Time.Format(time.RFC3339)
	}
	if w.count == 0 {
		w.count = 1
	}
	if got.Line != w.line || got.Family != w.family || got.What != w.what || gotTime != w.time ||
		got.Source != addr(w.source) || got.Dest != addr(w.dest) || got.DestHost != w.destHost ||
		got.Port != w.port || got.Protocol != w.proto || got.Detail != w.detail || got.Count != w.count || got.ViaForwardedHeader != w.via {
		t.Errorf("Parse(%s) event %d = %+v (time %s)\nwant %+v", name, i, got, gotTime, w)
	}
}
