package notice

import (
	"strings"
	"testing"
)

// hostileBodies are shapes that would cost quadratic time if a rule
// re-read the rest of a line (or of the mail) at each match. Each is about
// 1 MB; a quadratic rule would take hours on them, so a pass here (within
// go test's timeout) shows the rules stay linear. Timings are measured in
// BenchmarkParseHostile, never asserted.
func hostileBodies() map[string]string {
	const n = 1 << 20
	rep := func(s string) string { return strings.Repeat(s, n/len(s)) }
	return map[string]string{
		"dst labels":      rep("dst=203.0.113.1 "),
		"arrows":          rep("198.51.100.1:1 -> 203.0.113.1:2 "),
		"target labels":   rep("Target: 203.0.113.1  "),
		"against":         rep("against 203.0.113.1 "),
		"address run":     rep("1.1.1.1."),
		"colon run":       rep("a:b:"),
		"forward markers": rep("\n---------- Forwarded message ---------\nFrom: a@example.com\n"),
		"received":        rep("Received: from x ([198.51.100.1]) by mx.example.org\n"),
		"clock run":       rep("01:02:03 "),
		"month run":       rep("Apr 8 18:59:01 "),
		"table rows":      "Src IP  Dst IP  DPort\n" + rep("198.51.100.1  203.0.113.1  22\n"),
	}
}

func hostileMail(body string) []byte {
	return []byte("From: ec2-abuse@amazon.com\nSubject: Your AWS Abuse Report [12345678901] [AWS ID 111122223333]\n" +
		"Date: Mon, 04 May 2026 10:00:00 +0000\n\nhas been implicated in Port Scanning.\n" +
		"---Beginning of forwarded report(s)---\n" + body)
}

func TestHostileLines(t *testing.T) {
	for name, body := range hostileBodies() {
		t.Run(name, func(t *testing.T) {
			res, err := Parse(hostileMail(body))
			if err != nil {
				t.Fatalf("Parse(%s): %v", name, err)
			}
			if !res.IsNotice {
				t.Fatalf("Parse(%s) lost the notice: %s", name, res.Reason)
			}
		})
	}
}

func BenchmarkParseHostile(b *testing.B) {
	for name, body := range hostileBodies() {
		raw := hostileMail(body)
		b.Run(strings.ReplaceAll(name, " ", "-"), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for i := 0; i < b.N; i++ {
				if _, err := Parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
