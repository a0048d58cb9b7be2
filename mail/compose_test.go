package mail

import (
	"bytes"
	"flag"
	"io"
	netmail "net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	gomail "github.com/emersion/go-message/mail"
)

// -update rewrites the golden files. Another test file of this package may
// define the same flag, so it is defined only when missing.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func composeUpdating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

var composeNow = time.Date(2026, 4, 14, 5, 30, 0, 0, time.UTC)

func composeTestNotice() abuse.Notice {
	at := time.Date(2026, 4, 14, 1, 47, 2, 0, time.UTC)
	date := time.Date(2026, 4, 14, 3, 12, 9, 0, time.UTC)
	by := date.Add(24 * time.Hour)
	return abuse.Notice{
		Provider: "aws", Stage: abuse.StageNotice, CaseID: "13051177201-1", AccountID: "111122223333",
		Type: abuse.TypePortScan, ReportedActivity: "Port Scanning", Regions: []string{"eu-central-1"},
		Resources: []abuse.Resource{{InstanceID: "i-0a1b2c3d4e5f60718", PublicIP: "198.51.100.23", Region: "eu-central-1"}},
		AbuseTime: &at,
		Targets: []abuse.Target{
			{IP: netip.MustParseAddr("203.0.113.10"), Port: 23, Protocol: "tcp"},
			{IP: netip.MustParseAddr("203.0.113.11"), Port: 445, Protocol: "tcp"},
			{IP: netip.MustParseAddr("203.0.113.12")},
		},
		Sender:     "trustandsafety@support.aws.com",
		ReplyTo:    "trustandsafety@support.aws.com",
		MessageID:  "<8f2c1a0e5b7d4c21a9e3f6b0c4d2e1a7@amazon.com>",
		References: []string{"<first@amazon.com>"},
		Subject:    "Your AWS Abuse Report [13051177201-1] [AWS ID 111122223333]",
		Date:       &date, ReplyBy: &by,
		Evidence: "\nHello,\nHosts in your network probed our servers.\n" +
			"198.51.100.23 203.0.113.10 23\n\x1b[31mconfirm\x1b[0m \u202Eevil\n",
	}
}

var (
	composeFrom    = &netmail.Address{Name: "Abuse Desk", Address: "abuse@example.com"}
	composeAdmins  = []*netmail.Address{{Name: "Ops", Address: "ops@example.com"}, {Address: "alice@example.com"}}
	composeMailbox = &netmail.Address{Address: "abuse-inbox@example.com"}
)

func composeTestReplyData() ReplyData {
	return ReplyData{
		CaseID: "13051177201-1", AccountID: "111122223333", Activity: "Port Scanning",
		Regions:    []string{"eu-central-1"},
		Instances:  []string{"i-0a1b2c3d4e5f60718 (198.51.100.23, eu-central-1)"},
		AbuseTime:  "2026-04-14 01:47:02 UTC",
		Targets:    []string{"203.0.113.10 tcp/23", "203.0.113.11 tcp/445"},
		Findings:   []string{"a web shell at /var/www/html/up.php started the scan (access log lines 10-14)"},
		Actions:    []string{"2026-04-14 04:02 UTC: outbound traffic to 203.0.113.10/32 and 203.0.113.11/32 denied in network ACL acl-0123456789abcdef0"},
		Prevention: []string{"removed the web shell", "updated the CMS and its plugins"},
		AdminNote:  "We removed the file and rotated the credentials.\nThe instance stays blocked until we rebuild it.",
		Contact:    "Alice Example, +49 30 1234567",
		Now:        composeNow,
	}
}

func composeTestSummary(t *testing.T, kind string) Summary {
	t.Helper()
	draft, err := RenderReply("", composeTestReplyData())
	if err != nil {
		t.Fatalf("RenderReply() = %v", err)
	}
	return Summary{
		From: composeFrom, To: composeAdmins, ReplyTo: composeMailbox,
		Hostname: "responder.example.com", Token: "ar1-abcdefghijklmnop234567", Kind: kind,
		Notice: composeTestNotice(), State: "blocked and verified, awaiting approval",
		Done:       []string{"2026-04-14 04:02 UTC: denied outbound traffic to 2 targets in acl-0123456789abcdef0", "2026-04-14 04:03 UTC: verified the block"},
		Findings:   []string{"verdict: confirmed", "a web shell at /var/www/html/up.php started the scan"},
		DraftReply: draft,
		Problems:   []string{"sender not authenticated: topmost Authentication-Results of mx.example.com says dkim=fail"},
		Now:        composeNow,
	}
}

// composeGolden compares got with testdata/name, or rewrites it with -update.
func composeGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if composeUpdating() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// composeParse reads a composed message back with go-message and returns
// its header and decoded text.
func composeParse(t *testing.T, raw []byte) (gomail.Header, string) {
	t.Helper()
	mr, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("CreateReader() = %v", err)
	}
	p, err := mr.NextPart()
	if err != nil {
		t.Fatalf("NextPart() = %v", err)
	}
	b, err := io.ReadAll(p.Body)
	if err != nil {
		t.Fatal(err)
	}
	ct, params, err := mr.Header.ContentType()
	if err != nil || ct != "text/plain" || params["charset"] != "utf-8" {
		t.Errorf("Content-Type = %s %v (%v), want text/plain; charset=utf-8", ct, params, err)
	}
	if cte := mr.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Errorf("Content-Transfer-Encoding = %q, want quoted-printable", cte)
	}
	return mr.Header, strings.ReplaceAll(string(b), "\r\n", "\n")
}

func TestComposeSummaryGolden(t *testing.T) {
	full := composeTestSummary(t, KindUrgent)
	minimal := Summary{
		From: composeFrom, To: composeAdmins[:1], ReplyTo: composeMailbox,
		Hostname: "responder.example.com", Token: "ar1-minimal",
		Notice: abuse.Notice{CaseID: "99-1", AccountID: "111122223333", Type: abuse.TypeOther,
			Sender: "ec2-abuse@amazon.com", Subject: "AWS Abuse Report [99-1]",
			Date: composeTestNotice().Date},
		State:      "analyzed (report-only)",
		Done:       []string{"no change made: report-only mode"},
		DraftReply: "",
		Now:        composeNow,
	}
	for _, tt := range []struct {
		file string
		s    Summary
	}{{"compose-summary-urgent.golden.eml", full}, {"compose-summary-minimal.golden.eml", minimal}} {
		t.Run(tt.file, func(t *testing.T) {
			raw, id, err := ComposeSummary(tt.s)
			if err != nil {
				t.Fatalf("ComposeSummary() = %v", err)
			}
			if want := "<" + tt.s.Token + "@responder.example.com>"; id != want {
				t.Errorf("ComposeSummary() id = %s, want %s", id, want)
			}
			composeGolden(t, tt.file, raw)
		})
	}
}

func TestComposeSummaryHeaders(t *testing.T) {
	for _, tt := range []struct{ kind, prefix string }{
		{"", "[abuse-responder] "}, {KindSummary, "[abuse-responder] "},
		{KindReminder, "Reminder: [abuse-responder] "}, {KindUrgent, "URGENT: [abuse-responder] "},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			s := composeTestSummary(t, tt.kind)
			raw, id, err := ComposeSummary(s)
			if err != nil {
				t.Fatalf("ComposeSummary() = %v", err)
			}
			h, body := composeParse(t, raw)
			if got, _ := h.MessageID(); "<"+got+">" != id || got != s.Token+"@responder.example.com" {
				t.Errorf("Message-ID = %q, want %s", got, id)
			}
			subj, _ := h.Subject()
			if want := tt.prefix + "Case 13051177201-1: Port Scanning"; subj != want {
				t.Errorf("Subject = %q, want %q", subj, want)
			}
			for k, want := range map[string]string{
				"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All",
				"Reply-To": "<abuse-inbox@example.com>", "Date": "Tue, 14 Apr 2026 05:30:00 +0000",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			to, _ := h.AddressList("To")
			if len(to) != 2 || to[0].Address != "ops@example.com" {
				t.Errorf("To = %v, want the two admins", to)
			}
			if strings.ContainsAny(body, "\x1b\u202e") {
				t.Errorf("body keeps control or bidi characters from the evidence")
			}
			for _, l := range strings.Split(body, "\n") {
				if strings.Contains(l, "confirm") && strings.TrimSpace(l) == "[31mconfirm[0m evil" {
					t.Errorf("evidence line %q is not marked untrusted", l)
				}
			}
			if !strings.Contains(body, "  | 198.51.100.23 203.0.113.10 23\n") {
				t.Errorf("body lacks the quoted evidence:\n%s", body)
			}
			if !strings.Contains(body, "Reply by:     2026-04-15 03:12 UTC (in 21 h)") {
				t.Errorf("body lacks the deadline:\n%s", body)
			}
		})
	}
}

func TestComposeSummaryEvidenceCut(t *testing.T) {
	s := composeTestSummary(t, KindSummary)
	var ev []string
	for i := 0; i < 50; i++ {
		ev = append(ev, "line "+strings.Repeat("x", i*10))
	}
	s.Notice.Evidence = strings.Join(ev, "\n")
	raw, _, err := ComposeSummary(s)
	if err != nil {
		t.Fatalf("ComposeSummary() = %v", err)
	}
	_, body := composeParse(t, raw)
	if n := strings.Count(body, "\n  | "); n != composeEvidenceLines {
		t.Errorf("body shows %d evidence lines, want %d", n, composeEvidenceLines)
	}
	if !strings.Contains(body, "(30 more lines not shown)") {
		t.Errorf("body does not say how many lines were cut")
	}
}
