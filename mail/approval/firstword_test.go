package approval

import (
	"strings"
	"testing"
)

var firstWordTests = []struct {
	name, body, verb, note string
}{
	{"bare", "confirm", "confirm", ""},
	{"capitals and punctuation", "CONFIRM!\r\n", "confirm", ""},
	{"with a note", "Confirm.\n\nWe removed the shell.\n  Indented line.\n\n\nThanks\n\n-- \nAlice\n", "confirm",
		"We removed the shell.\n  Indented line.\n\nThanks"},
	{"reject", "reject\nIt was a pentest.", "reject", "It was a pentest."},
	{"leading blank lines", "\n\n   confirm   \n", "confirm", ""},
	{"zero-width and nbsp", "\ufeff\u200bconfirm\u00a0\n", "confirm", ""},
	{"bidi override", "\u202econfirm\u202c", "confirm", ""},
	{"question", "confirm?", "", ""},
	{"sentence", "I cannot confirm this", "", ""},
	{"confirmed", "confirmed", "", ""},
	{"verb and more", "confirm - looks fine", "", ""},
	{"empty", "", "", ""},
	{"only quoted", "> confirm\n> Case 1\n", "", ""},
	{"bottom post without attribution", "> Case 1\n>\n\nconfirm\nok", "confirm", "ok"},
	{"quoted lines left out of the note", "confirm\nline 1\n> quoted\nline 2", "confirm", "line 1\nline 2"},
	{"gmail attribution", "\nOn Tue, Apr 14, 2026 at 7:30 AM Abuse Desk <abuse@example.com> wrote:\n\n> confirm\n", "", ""},
	{"gmail attribution, wrapped", "On Tue, Apr 14, 2026 at 7:30 AM Abuse Desk via ops <\nabuse@example.com> wrote:\nconfirm\n", "", ""},
	{"thunderbird attribution", "On 14.04.26 07:30, Abuse Desk wrote:\nconfirm", "", ""},
	{"german attribution", "Am 14.04.2026 um 07:30 schrieb Abuse Desk:\nconfirm", "", ""},
	{"original message", "-----Original Message-----\nFrom: Abuse Desk\nSent: today\n\nconfirm", "", ""},
	{"original message, spaced", "----- Original Message -----\nconfirm", "", ""},
	{"german original message", "-----Ursprüngliche Nachricht-----\nconfirm", "", ""},
	{"outlook header block", "\n\nFrom: Abuse Desk <abuse@example.com>\nSent: Tuesday, April 14, 2026 7:30 AM\nTo: Ops\nSubject: x\n\nconfirm\n", "", ""},
	{"outlook header block, bold", "*From:* Abuse Desk <abuse@example.com>\n*Sent:* Tuesday\nconfirm", "", ""},
	{"outlook header block, german", "Von: Abuse Desk <abuse@example.com>\nGesendet: Dienstag\nconfirm", "", ""},
	{"outlook rule", "________________________________\nconfirm", "", ""},
	{"note cut at the quoted header", "confirm\nnote\n\nFrom: Abuse Desk <abuse@example.com>\nSent: Tuesday\n\nreject", "confirm", "note"},
	{"a From line in the note is kept", "confirm\nFrom: our side, all is fixed.\nThanks", "confirm", "From: our side, all is fixed.\nThanks"},
	{"signature first", "-- \nconfirm", "", ""},
	{"signature without space", "--\nconfirm", "", ""},
	{"phone signature", "confirm\n\nSent from my iPhone\n\n> quoted", "confirm", ""},
	{"forwarded", "Begin forwarded message:\n\nconfirm", "", ""},
}

func TestFirstWord(t *testing.T) {
	for _, tt := range firstWordTests {
		t.Run(tt.name, func(t *testing.T) {
			verb, note := FirstWord(tt.body)
			if verb != tt.verb || note != tt.note {
				t.Errorf("FirstWord(%q) = %q, %q; want %q, %q", tt.body, verb, note, tt.verb, tt.note)
			}
		})
	}
}

func TestHTMLToText(t *testing.T) {
	tests := []struct{ name, html, verb string }{
		{"gmail", `<div dir="ltr">Confirm</div><br><div class="gmail_quote"><div class="gmail_attr">On Tue wrote:<br></div><blockquote class="gmail_quote">x</blockquote></div>`, "confirm"},
		{"quoted only", `<div><br></div><blockquote type="cite">confirm</blockquote>`, ""},
		{"outlook", `<html><head><style>p{}</style></head><body><p>reject</p><div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>From:</b> x</div>confirm</body></html>`, "reject"},
		{"entities", `<p>&#99;onfirm&nbsp;</p>`, "confirm"},
	}
	for _, tt := range tests {
		if verb, _ := FirstWord(htmlToText(tt.html)); verb != tt.verb {
			t.Errorf("FirstWord(htmlToText(%s)) = %q, want %q; text %q", tt.name, verb, tt.verb, htmlToText(tt.html))
		}
	}
}

func FuzzFirstWord(f *testing.F) {
	for _, tt := range firstWordTests {
		f.Add(tt.body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		verb, note := FirstWord(body)
		switch verb {
		case "":
			if note != "" {
				t.Fatalf("FirstWord(%q) = no verb but note %q", body, note)
			}
		case VerbConfirm, VerbReject:
			if note != strings.TrimSpace(note) {
				t.Fatalf("FirstWord(%q) note %q is not trimmed", body, note)
			}
		default:
			t.Fatalf("FirstWord(%q) = verb %q", body, verb)
		}
		_ = htmlToText(body)
	})
}
