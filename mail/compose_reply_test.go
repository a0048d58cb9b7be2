package mail

import (
	netmail "net/mail"
	"strings"
	"testing"
	"time"
)

func TestComposeReplyGolden(t *testing.T) {
	body, err := RenderReply("", composeTestReplyData())
	if err != nil {
		t.Fatalf("RenderReply() = %v", err)
	}
	raw, id, err := ComposeReply(Reply{
		From: composeFrom, To: &netmail.Address{Name: "AWS Trust and Safety", Address: "trustandsafety@support.aws.com"},
		Hostname: "responder.example.com", Notice: composeTestNotice(), Body: body, Now: composeNow,
		MessageID: "reply.13051177201-1@responder.example.com",
	})
	if err != nil {
		t.Fatalf("ComposeReply() = %v", err)
	}
	if id != "<reply.13051177201-1@responder.example.com>" {
		t.Errorf("ComposeReply() id = %s", id)
	}
	composeGolden(t, "compose-reply.golden.eml", raw)
}

func TestComposeReplyHeaders(t *testing.T) {
	tests := []struct {
		name, subject, wantSubject string
	}{
		{"plain", "Your AWS Abuse Report [13051177201-1] [AWS ID 111122223333]", "Re: Your AWS Abuse Report [13051177201-1] [AWS ID 111122223333]"},
		{"already Re:", "RE: Your AWS Abuse Report [1-1]", "RE: Your AWS Abuse Report [1-1]"},
		{"lower re:", "re: Your AWS Abuse Report [1-1]", "re: Your AWS Abuse Report [1-1]"},
		{"non-ASCII", "Ihr AWS-Missbrauchsbericht [1-1] – Überprüfung", "Re: Ihr AWS-Missbrauchsbericht [1-1] – Überprüfung"},
		{"header injection", "Report [1-1]\r\nBcc: evil@example.net", "Re: Report [1-1]  Bcc: evil@example.net"},
	}
	var ids []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := composeTestNotice()
			n.Subject = tt.subject
			raw, id, err := ComposeReply(Reply{From: composeFrom, To: &netmail.Address{Address: "trustandsafety@support.aws.com"},
				Hostname: "responder.example.com", Notice: n, Body: "Hello.\nWe fixed it.", Now: composeNow})
			if err != nil {
				t.Fatalf("ComposeReply() = %v", err)
			}
			ids = append(ids, id)
			h, body := composeParse(t, raw)
			if subj, _ := h.Subject(); subj != tt.wantSubject {
				t.Errorf("Subject = %q, want %q", subj, tt.wantSubject)
			}
			if h.Has("Bcc") || h.Has("Auto-Submitted") || h.Has("X-Auto-Response-Suppress") {
				t.Errorf("reply has Bcc, Auto-Submitted or X-Auto-Response-Suppress: %v", h.Map())
			}
			if irt, _ := h.MsgIDList("In-Reply-To"); len(irt) != 1 || irt[0] != "8f2c1a0e5b7d4c21a9e3f6b0c4d2e1a7@amazon.com" {
				t.Errorf("In-Reply-To = %v, want the notice's Message-ID", irt)
			}
			refs, _ := h.MsgIDList("References")
			if strings.Join(refs, " ") != "first@amazon.com 8f2c1a0e5b7d4c21a9e3f6b0c4d2e1a7@amazon.com" {
				t.Errorf("References = %v, want the notice's References and its Message-ID", refs)
			}
			if got, _ := h.MessageID(); "<"+got+">" != id || !strings.HasSuffix(got, "@responder.example.com") {
				t.Errorf("Message-ID = %q, want %s ending in @responder.example.com", got, id)
			}
			if body != "Hello.\nWe fixed it.\n" {
				t.Errorf("body = %q", body)
			}
		})
	}
	if len(ids) > 1 && ids[0] == ids[1] {
		t.Errorf("two replies got the same Message-ID %s", ids[0])
	}
}

func TestComposeReferencesCap(t *testing.T) {
	var refs []string
	for i := 0; i < 40; i++ {
		refs = append(refs, "<r"+strings.Repeat("x", i)+"@example.com>")
	}
	refs = append(refs, "<bad id@example.com>", "", "<r@example.com>")
	got := composeReferences(refs, "parent@amazon.com")
	if len(got) != composeMaxRefs || got[0] != "r@example.com" || got[len(got)-1] != "parent@amazon.com" {
		t.Errorf("composeReferences() = %v, want %d IDs from the first to the parent", got, composeMaxRefs)
	}
	for _, id := range got {
		if strings.Contains(id, " ") {
			t.Errorf("composeReferences() kept the invalid ID %q", id)
		}
	}
}

func TestRenderReply(t *testing.T) {
	full := composeTestReplyData()
	reportOnly := ReplyData{CaseID: "99-1", AccountID: "111122223333", AdminNote: "The scan was an authorised pentest; it has ended.", Now: composeNow}
	bare := ReplyData{CaseID: "99-2", AccountID: "111122223333", Now: composeNow}
	tests := []struct {
		name, tmpl string
		d          ReplyData
		want       []string // substrings
		notWant    []string
		wantErr    bool
	}{
		{name: "full", d: full, want: []string{
			"case 13051177201-1, AWS account 111122223333 (Port Scanning).",
			"  - i-0a1b2c3d4e5f60718 (198.51.100.23, eu-central-1)\n",
			"Our investigation found:\n  - a web shell",
			"  - 2026-04-14 04:02 UTC: outbound traffic",
			"To prevent a recurrence:\n  - removed the web shell\n  - updated the CMS",
			"Note from our administrators:\n  We removed the file and rotated the credentials.\n  The instance stays",
			"or contact Alice Example, +49 30 1234567.",
		}, notWant: []string{"No blocking", "No further findings"}},
		{name: "report-only", d: reportOnly, want: []string{
			"No further findings are available from our automated analysis; the note from our administrators below describes what we found.",
			"No blocking was applied by this tool; the note from our administrators below describes how the case was handled.",
			"Note from our administrators:\n  The scan was an authorised pentest",
		}, notWant: []string{"To prevent", "contact"}},
		{name: "nothing at all", d: bare, want: []string{
			"No further findings are available from our automated analysis.\n",
			"No blocking was applied by this tool.\n",
		}, notWant: []string{"Note from", "\n\n\n", " \n"}},
		{name: "custom", tmpl: "Case {{.CaseID}}: {{join .Targets \"; \"}} at {{utc .Now}}\n", d: full,
			want: []string{"Case 13051177201-1: 203.0.113.10 tcp/23; 203.0.113.11 tcp/445 at 2026-04-14 05:30 UTC\n"}},
		{name: "unknown field", tmpl: "{{.Ticket}}", d: full, wantErr: true},
		{name: "bad syntax", tmpl: "{{if .CaseID}", d: full, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RenderReply(tt.tmpl, tt.d)
			if (err != nil) != tt.wantErr {
				t.Fatalf("RenderReply() error = %v, want error %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("RenderReply() lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("RenderReply() contains %q:\n%s", w, got)
				}
			}
		})
	}
	if !strings.Contains(DefaultReplyTemplate(), "{{.CaseID}}") {
		t.Errorf("DefaultReplyTemplate() does not look like the reply template")
	}
}

func TestComposeRefuses(t *testing.T) {
	good := composeTestSummary(t, KindSummary)
	for name, mod := range map[string]func(*Summary){
		"no hostname":      func(s *Summary) { s.Hostname = "" },
		"hostname with @":  func(s *Summary) { s.Hostname = "a@b" },
		"no token":         func(s *Summary) { s.Token = "" },
		"token with @":     func(s *Summary) { s.Token = "a@b" },
		"token with space": func(s *Summary) { s.Token = "a b" },
		"token with >":     func(s *Summary) { s.Token = "a>" },
		"no From":          func(s *Summary) { s.From = nil },
		"no To":            func(s *Summary) { s.To = nil },
		"no time":          func(s *Summary) { s.Now = time.Time{} },
		"unknown kind":     func(s *Summary) { s.Kind = "digest" },
	} {
		s := good
		mod(&s)
		if _, _, err := ComposeSummary(s); err == nil {
			t.Errorf("ComposeSummary(%s) = nil error, want a refusal", name)
		}
	}
	r := Reply{From: composeFrom, To: composeMailbox, Hostname: "h.example.com", Notice: composeTestNotice(), Body: "x", Now: composeNow}
	for name, mod := range map[string]func(*Reply){
		"no To":          func(r *Reply) { r.To = nil },
		"empty body":     func(r *Reply) { r.Body = " \n" },
		"bad Message-ID": func(r *Reply) { r.MessageID = "two words@h" },
		"bad hostname":   func(r *Reply) { r.Hostname = "h h" },
	} {
		rr := r
		mod(&rr)
		if _, _, err := ComposeReply(rr); err == nil {
			t.Errorf("ComposeReply(%s) = nil error, want a refusal", name)
		}
	}
}
