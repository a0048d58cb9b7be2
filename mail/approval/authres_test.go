package approval

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
)

// header parses a header block the way Evaluate does, so that field order
// (topmost first) is the real one.
func header(t *testing.T, fields ...string) mail.Header {
	t.Helper()
	raw := strings.Join(fields, "\r\n") + "\r\n\r\nbody\r\n"
	mr, err := mail.CreateReader(bytes.NewReader([]byte(raw)))
	if err != nil {
		t.Fatalf("CreateReader() = %v", err)
	}
	return mr.Header
}

func TestAuthenticated(t *testing.T) {
	const from = "From: Alice <alice@example.com>"
	tests := []struct {
		name   string
		fields []string
		ok     bool
		reason string // substring
	}{
		{"dmarc pass", []string{"Authentication-Results: mx.example.com; dmarc=pass header.from=example.com", from}, true, "dmarc=pass"},
		{"aligned dkim", []string{"Authentication-Results: mx.example.com; dkim=pass header.d=example.com", from}, true, "dkim=pass for example.com"},
		{"dkim for the parent domain", []string{"Authentication-Results: mx.example.com; dkim=pass header.d=example.com",
			"From: alice@mail.example.com"}, true, "aligned"},
		{"dkim by header.i only", []string{"Authentication-Results: mx.example.com; dkim=pass header.i=@example.com", from}, true, "aligned"},
		{"OpenDKIM comments with ';'", []string{"Authentication-Results: mx.example.com;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=example.com header.i=@example.com header.b=\"AbC;d\";\r\n\tspf=pass (mx.example.com: domain of alice@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=alice@example.com", from}, true, "dkim=pass"},
		{"version and case", []string{"Authentication-Results: MX.Example.COM 1; DKIM=Pass header.d=Example.COM.", from}, true, "aligned"},
		{"another authserv-id above ours", []string{
			"Authentication-Results: relay.example.org; dkim=fail header.d=example.com",
			"Authentication-Results: mx.example.com; dkim=pass header.d=example.com", from}, true, "aligned"},

		{"no header", []string{from}, false, "no Authentication-Results from mx.example.com"},
		{"failing topmost, attacker's pass below", []string{
			"Authentication-Results: mx.example.com; dkim=fail header.d=example.com; dmarc=fail header.from=example.com",
			"Authentication-Results: mx.example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com", from}, false, "dmarc=fail"},
		{"none topmost, attacker's pass below", []string{
			"Authentication-Results: mx.example.com; none",
			"Authentication-Results: mx.example.com; dmarc=pass header.from=example.com", from}, false, "no DKIM or DMARC"},
		{"wrong authserv-id", []string{"Authentication-Results: mx.example.com.evil.example; dmarc=pass header.from=example.com", from}, false, "no Authentication-Results"},
		{"authserv-id as a suffix", []string{"Authentication-Results: evil-mx.example.com; dmarc=pass header.from=example.com", from}, false, "no Authentication-Results"},
		{"unaligned dkim", []string{"Authentication-Results: mx.example.com; dkim=pass header.d=evil.example", from}, false, "not aligned"},
		{"dkim for a look-alike", []string{"Authentication-Results: mx.example.com; dkim=pass header.d=notexample.com", from}, false, "not aligned"},
		{"dkim for a subdomain", []string{"Authentication-Results: mx.example.com; dkim=pass header.d=mail.example.com", from}, false, "not aligned"},
		{"dkim for a TLD", []string{"Authentication-Results: mx.example.com; dkim=pass header.d=com", from}, false, "not aligned"},
		{"aligned dkim but dmarc=fail", []string{"Authentication-Results: mx.example.com; dkim=pass header.d=example.com; dmarc=fail header.from=example.com",
			"From: alice@example.com"}, false, "dmarc=fail"},
		{"dmarc pass for another domain", []string{"Authentication-Results: mx.example.com; dmarc=pass header.from=evil.example", from}, false, "not the From domain"},
		{"dkim fail", []string{"Authentication-Results: mx.example.com; dkim=fail header.d=example.com", from}, false, "dkim=fail"},
		{"unreadable", []string{"Authentication-Results: mx.example.com; dkim", from}, false, "unreadable"},
		{"two From addresses", []string{"Authentication-Results: mx.example.com; dmarc=pass header.from=example.com",
			"From: alice@example.com, mallory@evil.example"}, false, "exactly one"},
		{"comment hides pass", []string{"Authentication-Results: mx.example.com; dkim=fail (dkim=pass header.d=example.com) header.d=example.com", from}, false, "dkim=fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := Authenticated(header(t, tt.fields...), "mx.example.com")
			if ok != tt.ok || !strings.Contains(reason, tt.reason) {
				t.Errorf("Authenticated() = %v, %q; want %v, …%q…", ok, reason, tt.ok, tt.reason)
			}
		})
	}
	if ok, _ := Authenticated(header(t, "Authentication-Results: ; dmarc=pass", from), ""); ok {
		t.Errorf("Authenticated(authservID \"\") = true, want false")
	}
}

func TestStripComments(t *testing.T) {
	for in, want := range map[string]string{
		`a (b; c) d`:            `a   d`,
		`a (b (nested; x) c) d`: `a   d`,
		`a "q (not) ;" b`:       `a "q (not)  " b`,
		`a (esc \) ;) b`:        `a   b`,
		`unclosed (x; y`:        `unclosed `,
	} {
		if got := stripComments(in); got != want {
			t.Errorf("stripComments(%q) = %q, want %q", in, got, want)
		}
	}
}
