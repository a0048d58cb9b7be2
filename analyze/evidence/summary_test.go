package evidence

import (
	"net/netip"
	"testing"
	"time"
)

func TestSummaryText(t *testing.T) {
	at := func(s string) *time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	dest := netip.MustParseAddr("203.0.113.5")
	tests := []struct {
		name string
		in   Summary
		want string
	}{
		{"range on one day", Summary{What: "ssh-login-failure", Dest: dest, Port: 22, Count: 37, First: at("2026-04-08T04:12:09Z"), Last: at("2026-04-08T04:19:59Z")},
			"37 SSH login failures against 203.0.113.5:22, 04:12–04:19 UTC"},
		{"one time", Summary{What: "ssh-login-failure", Dest: dest, Port: 22, Count: 1, First: at("2026-04-08T04:12:00Z"), Last: at("2026-04-08T04:12:00Z")},
			"1 SSH login failure against 203.0.113.5:22, at 04:12 UTC"},
		{"same minute counts as one time", Summary{What: "http-request", Count: 3, First: at("2026-04-08T04:12:01Z"), Last: at("2026-04-08T04:12:59Z")},
			"3 HTTP requests, at 04:12 UTC"},
		{"across days", Summary{What: "port-probe", Dest: dest, Port: 445, Protocol: "tcp", Count: 2, First: at("2026-04-08T18:59:08Z"), Last: at("2026-04-09T02:00:00Z")},
			"2 port probes of 203.0.113.5:445/tcp, 2026-04-08 18:59 – 2026-04-09 02:00 UTC"},
		{"no time", Summary{What: "connection", Dest: dest, Port: 3333, Protocol: "tcp", Count: 1}, "1 connection to 203.0.113.5:3333/tcp"},
		{"no target", Summary{What: "reported", Count: 1}, "1 abuse report"},
		{"plural -es", Summary{What: "fail2ban-match", Count: 2}, "2 fail2ban matches"},
		{"plural -ies", Summary{What: "spam-delivery", DestHost: "mx.example.org", Count: 4}, "4 spam deliveries to mx.example.org"},
		{"host and address", Summary{What: "waf-block", Dest: dest, DestHost: "shop.example.org", Port: 443, Count: 1}, "1 WAF block on shop.example.org (203.0.113.5:443)"},
		{"host and port", Summary{What: "http-request", DestHost: "www.example.org", Port: 8080, Count: 2}, "2 HTTP requests to www.example.org:8080"},
		{"port only", Summary{What: "login-attack", Port: 22, Count: 1}, "1 login attack against port 22"},
		{"protocol without port", Summary{What: "blocked-packet", Dest: dest, Protocol: "udp", Count: 5}, "5 blocked packets to 203.0.113.5 (udp)"},
		{"IPv6 with port", Summary{What: "connection", Dest: netip.MustParseAddr("2001:db8::1"), Port: 443, Count: 1}, "1 connection to [2001:db8::1]:443"},
		{"IPv6 without port", Summary{What: "connection", Dest: netip.MustParseAddr("2001:db8::1"), Count: 2}, "2 connections to 2001:db8::1"},
		{"unknown kind", Summary{What: "brute-force", Count: 2}, "2 brute-force events"},
		{"aggregate count", Summary{What: "ban-attempts", Count: 6}, "6 attempts that led to a fail2ban ban"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SummaryText(tt.in); got != tt.want {
				t.Errorf("SummaryText(%+v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestSummarize checks grouping: by (What, Dest, Port, Protocol), counts
// summed, first and last over the events that have a time, order of first
// appearance.
func TestSummarize(t *testing.T) {
	at := func(h int) *time.Time { v := time.Date(2026, 4, 8, h, 0, 0, 0, time.UTC); return &v }
	a := netip.MustParseAddr("203.0.113.8")
	b := netip.MustParseAddr("203.0.113.88")
	events := []Event{
		{What: "port-probe", Dest: a, Port: 22, Count: 1, Time: at(5)},
		{What: "port-probe", Dest: b, Port: 22, Count: 1},
		{What: "port-probe", Dest: a, Port: 22, Count: 2, Time: at(3)},
		{What: "port-probe", Dest: a, Port: 22, Count: 1},
		{What: "port-probe", Dest: a, Port: 22, Protocol: "tcp", Count: 1, DestHost: "x.example.org"},
	}
	got := Summarize(events)
	if len(got) != 3 {
		t.Fatalf("Summarize gave %d summaries, want 3: %+v", len(got), got)
	}
	if got[0].Dest != a || got[0].Count != 4 || !got[0].First.Equal(*at(3)) || !got[0].Last.Equal(*at(5)) {
		t.Errorf("Summarize()[0] = %+v, want 4 probes of %s, 03:00 to 05:00", got[0], a)
	}
	if got[1].Dest != b || got[1].First != nil || got[1].Text != "1 port probe of 203.0.113.88:22" {
		t.Errorf("Summarize()[1] = %+v, want 1 probe of %s without time", got[1], b)
	}
	if got[2].Protocol != "tcp" || got[2].DestHost != "x.example.org" {
		t.Errorf("Summarize()[2] = %+v, want the tcp group with its host", got[2])
	}
	if s := Summarize(nil); s == nil || len(s) != 0 {
		t.Errorf("Summarize(nil) = %#v, want an empty non-nil slice", s)
	}
}
