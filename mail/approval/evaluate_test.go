package approval

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	testCase  = "13051177201-1"
	testHost  = "responder.example.com"
	otherPlan = "0000000000000000000000000000000000000000000000000000000000000000"
)

var testPolicy = Policy{
	Approvers:    []string{"alice@example.com", "alice@mail.example.com", "bob.admin@corp.example.net"},
	AuthservID:   "mx.example.com",
	RequireAuth:  true,
	OwnAddresses: []string{"abuse@example.com", "abuse-inbox@example.com"},
}

// testdataMail reads testdata/name and puts tok where it says {{TOKEN}}.
func testdataMail(t testing.TB, name, tok string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.ReplaceAll(string(b), "{{TOKEN}}", tok))
}

// reply builds a plain reply with the given header fields (one per line,
// topmost first) above the usual ones, and the body.
type reply struct {
	top       []string // fields above the rest, e.g. Authentication-Results
	from      string
	inReplyTo string
	refs      string
	extra     []string
	body      string
}

func (r reply) bytes() []byte {
	var b strings.Builder
	for _, f := range r.top {
		b.WriteString(f + "\r\n")
	}
	from := r.from
	if from == "" {
		from = "Alice Example <alice@example.com>"
	}
	b.WriteString("From: " + from + "\r\n")
	b.WriteString("To: Abuse Desk <abuse-inbox@example.com>\r\n")
	b.WriteString("Subject: Re: [abuse-responder] Case 13051177201-1: Port Scanning\r\n")
	b.WriteString("Date: Tue, 14 Apr 2026 07:41:00 +0200\r\n")
	b.WriteString("Message-ID: <reply-1@example.com>\r\n")
	if r.inReplyTo != "" {
		b.WriteString("In-Reply-To: " + r.inReplyTo + "\r\n")
	}
	if r.refs != "" {
		b.WriteString("References: " + r.refs + "\r\n")
	}
	for _, f := range r.extra {
		b.WriteString(f + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	body := r.body
	if body == "" {
		body = "confirm\r\n"
	}
	b.WriteString(body)
	return []byte(b.String())
}

const passAR = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"

func TestEvaluate(t *testing.T) {
	s := NewSigner(testKey)
	now := testNow
	tok := s.Token(testCase, testPlan, now.Add(48*time.Hour))
	id := func(tok string) string { return "<" + tok + "@" + testHost + ">" }
	expired := s.Token(testCase, testPlan, now.Add(-time.Minute))
	tampered := tok[:len(tok)-3] + flip(tok[len(tok)-3]) + tok[len(tok)-2:]
	forged := NewSigner([]byte("a key the attacker guessed......")).Token(testCase, testPlan, now.Add(time.Hour))
	otherCase := s.Token("99999999999-1", testPlan, now.Add(48*time.Hour))
	oldPlan := s.Token(testCase, otherPlan, now.Add(48*time.Hour))

	tests := []struct {
		name    string
		raw     []byte
		policy  *Policy
		want    Decision
		wantErr []error
	}{
		{name: "gmail confirm", raw: testdataMail(t, "gmail-confirm.eml", tok),
			want: Decision{CaseID: testCase, PlanHash: testPlan, Verb: "confirm", Approver: "alice@example.com", MessageID: "<CAF+xq=abc123DEF@mail.gmail.com>"}},
		{name: "outlook confirm with a note, latin-1", raw: testdataMail(t, "outlook-confirm-note.eml", tok),
			want: Decision{CaseID: testCase, PlanHash: testPlan, Verb: "confirm", Approver: "bob.admin@corp.example.net",
				Note:      "We removed the web shell and rebuilt the instance from a clean image.\nGrüße, Bob",
				MessageID: "<AM0PR07MB1234ABCD5678@AM0PR07MB1234.eurprd07.prod.outlook.com>"}},
		{name: "apple mail reject", raw: testdataMail(t, "apple-reject.eml", tok),
			want: Decision{CaseID: testCase, PlanHash: testPlan, Verb: "reject", Approver: "alice@mail.example.com",
				Note:      "The scan was an authorised penetration test; see ticket SEC-1234.",
				MessageID: "<5B8E4F2A-1C3D-4E5F-9A0B-1C2D3E4F5A6B@mail.example.com>"}},
		{name: "token only in References", raw: reply{top: []string{passAR}, refs: "<a@b> " + id(tok)}.bytes(),
			want: Decision{CaseID: testCase, PlanHash: testPlan, Verb: "confirm", Approver: "alice@example.com", MessageID: "<reply-1@example.com>"}},
		{name: "Auto-Submitted: no", raw: reply{top: []string{passAR}, inReplyTo: id(tok), extra: []string{"Auto-Submitted: no"}}.bytes(),
			want: Decision{CaseID: testCase, PlanHash: testPlan, Verb: "confirm", Approver: "alice@example.com", MessageID: "<reply-1@example.com>"}},
		{name: "approver address in capitals", raw: reply{top: []string{passAR}, from: "Alice <Alice@EXAMPLE.com>", inReplyTo: id(tok)}.bytes(),
			want: Decision{CaseID: testCase, PlanHash: testPlan, Verb: "confirm", Approver: "alice@example.com", MessageID: "<reply-1@example.com>"}},
		{name: "no auth needed by policy", raw: reply{inReplyTo: id(tok)}.bytes(), policy: &Policy{Approvers: testPolicy.Approvers},
			want: Decision{CaseID: testCase, PlanHash: testPlan, Verb: "confirm", Approver: "alice@example.com", MessageID: "<reply-1@example.com>"}},
		{name: "reply to a reminder: In-Reply-To's plan wins", raw: reply{top: []string{passAR}, inReplyTo: id(tok), refs: id(oldPlan) + " " + id(tok)}.bytes(),
			want: Decision{CaseID: testCase, PlanHash: testPlan, Verb: "confirm", Approver: "alice@example.com", MessageID: "<reply-1@example.com>"}},
		{name: "HTML only", raw: reply{top: []string{passAR}, inReplyTo: id(tok),
			body: "<html><body><div>reject</div><blockquote>confirm</blockquote></body></html>\r\n"}.htmlBytes(),
			want: Decision{CaseID: testCase, PlanHash: testPlan, Verb: "reject", Approver: "alice@example.com", MessageID: "<reply-1@example.com>"}},

		{name: "not a reply to a summary", raw: reply{top: []string{passAR}, inReplyTo: "<8f2c1a0e@amazon.com>"}.bytes(), wantErr: []error{ErrNotApproval}},
		{name: "no In-Reply-To at all", raw: reply{top: []string{passAR}}.bytes(), wantErr: []error{ErrNotApproval}},
		{name: "non-approver", raw: reply{top: []string{"Authentication-Results: mx.example.com; dmarc=pass header.from=evil.example"},
			from: "Mallory <mallory@evil.example>", inReplyTo: id(tok)}.bytes(), wantErr: []error{ErrUnknownApprover}},
		{name: "approver's address as display name", raw: reply{top: []string{passAR}, from: `"alice@example.com" <mallory@evil.example>`, inReplyTo: id(tok)}.bytes(),
			wantErr: []error{ErrUnknownApprover}},
		{name: "two From addresses", raw: reply{top: []string{passAR}, from: "alice@example.com, mallory@evil.example", inReplyTo: id(tok)}.bytes(),
			wantErr: []error{ErrUnknownApprover}},
		{name: "no Authentication-Results", raw: reply{inReplyTo: id(tok)}.bytes(), wantErr: []error{ErrUnauthenticated}},
		{name: "failing topmost, attacker's pass below", raw: reply{top: []string{
			"Authentication-Results: mx.example.com; dkim=none; dmarc=fail header.from=example.com", passAR}, inReplyTo: id(tok)}.bytes(),
			wantErr: []error{ErrUnauthenticated}},
		{name: "wrong authserv-id", raw: reply{top: []string{strings.Replace(passAR, "mx.example.com", "mx.evil.example", 1)}, inReplyTo: id(tok)}.bytes(),
			wantErr: []error{ErrUnauthenticated}},
		{name: "dkim=pass for an unaligned domain", raw: reply{top: []string{"Authentication-Results: mx.example.com; dkim=pass header.d=evil.example; dmarc=none"},
			inReplyTo: id(tok)}.bytes(), wantErr: []error{ErrUnauthenticated}},
		{name: "tampered token", raw: reply{top: []string{passAR}, inReplyTo: id(tampered)}.bytes(), wantErr: []error{ErrBadToken}},
		{name: "token from another key", raw: reply{top: []string{passAR}, inReplyTo: id(forged)}.bytes(), wantErr: []error{ErrBadToken}},
		{name: "expired token", raw: reply{top: []string{passAR}, inReplyTo: id(expired)}.bytes(), wantErr: []error{ErrExpired}},
		{name: "expired and bad: expired is reported", raw: reply{top: []string{passAR}, inReplyTo: id(tampered), refs: id(expired)}.bytes(), wantErr: []error{ErrExpired}},
		{name: "tokens for two cases", raw: reply{top: []string{passAR}, inReplyTo: id(tok), refs: id(otherCase)}.bytes(), wantErr: []error{ErrAmbiguous}},
		{name: "two plans, neither in In-Reply-To", raw: reply{top: []string{passAR}, refs: id(oldPlan) + " " + id(tok)}.bytes(), wantErr: []error{ErrAmbiguous}},
		{name: "confirm only in Gmail quote", raw: testdataMail(t, "gmail-quoted-only.eml", tok), wantErr: []error{ErrNoVerb}},
		{name: "confirm only after Original Message", raw: testdataMail(t, "outlook-original-only.eml", tok), wantErr: []error{ErrNoVerb}},
		{name: "confirm only after From:/Sent: block", raw: testdataMail(t, "outlook-header-only.eml", tok), wantErr: []error{ErrNoVerb}},
		{name: "confirm not on the first line", raw: reply{top: []string{passAR}, inReplyTo: id(tok), body: "Looks good.\r\nconfirm\r\n"}.bytes(), wantErr: []error{ErrNoVerb}},
		{name: "auto-reply", raw: testdataMail(t, "vacation.eml", tok), wantErr: []error{ErrMachineMail, ErrAutoReply}},
		{name: "Precedence: bulk", raw: reply{top: []string{passAR}, inReplyTo: id(tok), extra: []string{"Precedence: bulk"}}.bytes(), wantErr: []error{ErrMachineMail, ErrAutoReply}},
		{name: "delivery report", raw: testdataMail(t, "bounce.eml", tok), wantErr: []error{ErrMachineMail, ErrDeliveryReport}},
		{name: "postmaster", raw: reply{top: []string{passAR}, from: "postmaster@example.com", inReplyTo: id(tok)}.bytes(), wantErr: []error{ErrMachineMail, ErrDeliveryReport}},
		{name: "empty Return-Path", raw: reply{top: []string{"Return-Path: <>", passAR}, inReplyTo: id(tok)}.bytes(), wantErr: []error{ErrMachineMail, ErrDeliveryReport}},
		{name: "our own summary looped back", raw: testdataMail(t, "own-summary.eml", tok), wantErr: []error{ErrMachineMail, ErrOwnMail}},
		{name: "too large", raw: append(reply{top: []string{passAR}, inReplyTo: id(tok)}.bytes(), make([]byte, maxMessageBytes)...), wantErr: []error{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy
			if tt.policy != nil {
				p = *tt.policy
			}
			got, err := Evaluate(tt.raw, p, s, now)
			if tt.wantErr == nil {
				if err != nil || got != tt.want {
					t.Errorf("Evaluate() = %+v, %v\nwant %+v", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Evaluate() = %+v, want an error", got)
			}
			for _, w := range tt.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("Evaluate() error = %v, want it to be %v", err, w)
				}
			}
			if got != (Decision{}) {
				t.Errorf("Evaluate() returned %+v with error %v", got, err)
			}
		})
	}
}

// htmlBytes is bytes with an HTML body.
func (r reply) htmlBytes() []byte {
	return []byte(strings.Replace(string(r.bytes()), "Content-Type: text/plain", "Content-Type: text/html", 1))
}

func FuzzEvaluate(f *testing.F) {
	s := NewSigner(testKey)
	tok := s.Token(testCase, testPlan, testNow.Add(time.Hour))
	files, _ := filepath.Glob("testdata/*.eml")
	for _, file := range files {
		f.Add(testdataMail(f, filepath.Base(file), tok))
	}
	f.Add(reply{top: []string{passAR}, inReplyTo: "<" + tok + "@h>"}.bytes())
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := Evaluate(raw, testPolicy, s, testNow)
		if err != nil {
			return
		}
		if d.Verb != VerbConfirm && d.Verb != VerbReject || d.CaseID != testCase || d.PlanHash != testPlan {
			t.Fatalf("Evaluate() = %+v", d)
		}
		if !contains(testPolicy.Approvers, d.Approver) {
			t.Fatalf("Evaluate() approved by %q, not an approver", d.Approver)
		}
	})
}
