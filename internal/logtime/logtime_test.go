package logtime

import (
	"strings"
	"testing"
	"time"
)

var ref = time.Date(2026, 4, 8, 17, 40, 55, 0, time.UTC)

func TestFind(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339 UTC with no stated zone and ref; "" for none
		text string // the stamp's text
	}{
		{"Abuse Time: 14 Apr 2026 01:47:02 UTC", "2026-04-14T01:47:02Z", "14 Apr 2026 01:47:02 UTC"},
		{"* Abuse Time: Sun Apr 05 02:14:55 UTC 2026", "2026-04-05T02:14:55Z", "Sun Apr 05 02:14:55 UTC 2026"},
		{"by mx; Sat, 11 Apr 2026 12:41:09 +0200 (CEST)", "2026-04-11T10:41:09Z", "Sat, 11 Apr 2026 12:41:09 +0200 (CEST)"},
		{"Checked 2026-04-02T02:21:07Z from", "2026-04-02T02:21:07Z", "2026-04-02T02:21:07Z"},
		{"2026-04-10 07:31:00.000 UTC src=", "2026-04-10T07:31:00Z", "2026-04-10 07:31:00.000 UTC"},
		{"First seen: 2026-03-30 06:58 UTC", "2026-03-30T06:58:00Z", "2026-03-30 06:58 UTC"},
		{"2026-04-08 18:59:08,412 fail2ban.actions", "2026-04-08T18:59:08Z", "2026-04-08 18:59:08,412"},
		{"Apr  8 18:59:01 bastion sshd[1]:", "2026-04-08T18:59:01Z", "Apr  8 18:59:01"},
		{`1.2.3.4 - - [20/Apr/2026:21:02:13 +0100] "GET /"`, "2026-04-20T20:02:13Z", "20/Apr/2026:21:02:13 +0100"},
		{"[Mon Apr 20 21:02:13.123456 2026] [core:error]", "2026-04-20T21:02:13Z", "Mon Apr 20 21:02:13.123456 2026"},
		{"2015/01/21 10:56:10 [error] 1#0:", "2015-01-21T10:56:10Z", "2015/01/21 10:56:10"},
		{"2017-01-01 12:00:00 PDT,203.0.113.9", "2017-01-01T19:00:00Z", "2017-01-01 12:00:00 PDT"},
		{"2026-06-10 14:00:00 EDT", "2026-06-10T18:00:00Z", "2026-06-10 14:00:00 EDT"},
		{"Apr 14, 2026 at 1:47 AM PDT", "2026-04-14T08:47:00Z", "Apr 14, 2026 at 1:47 AM PDT"},
		{"2026-04-08T18:59:01.5+02:00 host sshd", "2026-04-08T16:59:01Z", "2026-04-08T18:59:01.5+02:00"},
		{"31 Apr 2026 10:00:00 UTC", "", ""},
		{"no time here 12:30", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		st, ok := Find(tt.in)
		if !ok {
			if tt.want != "" {
				t.Errorf("Find(%q) found nothing, want %s", tt.in, tt.want)
			}
			continue
		}
		if tt.want == "" {
			t.Errorf("Find(%q) = %q, want nothing", tt.in, tt.in[st.Start:st.End])
			continue
		}
		if got := st.Time(nil, ref).Format(time.RFC3339); got != tt.want {
			t.Errorf("Find(%q).Time = %s, want %s", tt.in, got, tt.want)
		}
		if got := tt.in[st.Start:st.End]; got != tt.text {
			t.Errorf("Find(%q) text = %q, want %q", tt.in, got, tt.text)
		}
	}
}

// TestSyslogYear checks FORMATS.md §8: the mail's year, or the year
// before when that puts the stamp over a day after the mail.
func TestSyslogYear(t *testing.T) {
	newYear := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
	tests := []struct {
		line string
		ref  time.Time
		want string
	}{
		{"Dec 31 23:10:05 host sshd[1]:", newYear, "2025-12-31T23:10:05Z"},
		{"Jan  1 00:10:05 host sshd[1]:", newYear, "2026-01-01T00:10:05Z"},
		{"Jan  2 00:20:00 host sshd[1]:", newYear, "2026-01-02T00:20:00Z"}, // within a day of the mail
		{"Jan  2 00:40:00 host sshd[1]:", newYear, "2025-01-02T00:40:00Z"}, // over a day after: last year
		{"Apr  8 18:59:01 host sshd[1]:", ref, "2026-04-08T18:59:01Z"},
	}
	for _, tt := range tests {
		st, ok := Find(tt.line)
		if !ok {
			t.Fatalf("Find(%q) found nothing", tt.line)
		}
		if got := st.Time(nil, tt.ref).Format(time.RFC3339); got != tt.want {
			t.Errorf("Find(%q).Time(nil, %s) = %s, want %s", tt.line, tt.ref.Format(time.RFC3339), got, tt.want)
		}
	}
}

func TestStatedZone(t *testing.T) {
	tests := []struct {
		text  string
		stamp string
		want  string
	}{
		{"---- log of TCP port scans (time zone is UTC) ----", "Apr  8 18:59:01", "2026-04-08T18:59:01Z"},
		{"Note: Local timezone is +0200 (CEST)\nx", "Apr  8 18:59:01", "2026-04-08T16:59:01Z"},
		{"(times are JST, UTC+9) flow:", "2026-04-23 20:50:31", "2026-04-23T11:50:31Z"},
		{"lines\nAll times are Austrian local times, UTC+1/MET or UTC+2/MEST.", "2026-07-10 12:00:00", "2026-07-10T10:00:00Z"},
		{"All times are Austrian local times, UTC+1/MET or UTC+2/MEST.", "2026-01-10 12:00:00", "2026-01-10T11:00:00Z"},
		{"ip | asn | timestamp (UTC)", "2026-04-14 21:33:05", "2026-04-14T21:33:05Z"},
		{"Time zone: EST", "2026-04-14 21:33:05", "2026-04-15T02:33:05Z"},
		{"nothing stated here", "2026-04-14 21:33:05", "2026-04-14T21:33:05Z"},
		// A zone on the line beats the stated one.
		{"Note: Local timezone is +0200 (CEST)", "2026-04-08 18:59:01 UTC", "2026-04-08T18:59:01Z"},
	}
	for _, tt := range tests {
		z := StatedZone(tt.text)
		st, ok := Find(tt.stamp)
		if !ok {
			t.Fatalf("Find(%q) found nothing", tt.stamp)
		}
		if got := st.Time(z, ref).Format(time.RFC3339); got != tt.want {
			t.Errorf("Find(%q).Time(StatedZone(%q)) = %s, want %s", tt.stamp, tt.text, got, tt.want)
		}
	}
}

func TestParseZone(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"+0200", 120, true}, {"UTC+9", 540, true}, {"UTC-05:00", -300, true}, {"Z", 0, true},
		{"CEST", 120, true}, {"IST", 330, true}, {"PST", -480, true}, {"Ban", 0, false}, {"+1500", 0, false}, {"XYZ", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseZone(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseZone(%q) = %d, %v, want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestLinear runs the scanners over long hostile text; a quadratic rule
// would not finish within the test timeout.
func TestLinear(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("01:02:03 ", 50000),
		strings.Repeat("Apr 8 18:59:01 ", 30000),
		strings.Repeat("time zone utc ", 30000),
		strings.Repeat("2026-04-08 ", 30000),
	} {
		Find(s)
		StatedZone(s)
	}
}
