package evidence

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/abuse-responder/abuse-responder/internal/ipscan"
	"github.com/abuse-responder/abuse-responder/internal/logtext"
)

// sshPhrases map sshd messages to what happened, in the order tried: the
// longer phrase first where one contains another. user is the phrase the
// tried user name follows, "" when the message has none.
var sshPhrases = []struct {
	phrase, what, user string
}{
	{"failed password for invalid user ", "ssh-login-failure", "failed password for invalid user "},
	{"failed password for ", "ssh-login-failure", "failed password for "},
	{"failed publickey for invalid user ", "ssh-login-failure", "failed publickey for invalid user "},
	{"failed publickey for ", "ssh-login-failure", "failed publickey for "},
	{"failed keyboard-interactive/pam for invalid user ", "ssh-login-failure", "failed keyboard-interactive/pam for invalid user "},
	{"failed keyboard-interactive/pam for ", "ssh-login-failure", "failed keyboard-interactive/pam for "},
	{"maximum authentication attempts exceeded for invalid user ", "ssh-login-failure", "maximum authentication attempts exceeded for invalid user "},
	{"maximum authentication attempts exceeded for ", "ssh-login-failure", "maximum authentication attempts exceeded for "},
	{"authentication failure;", "ssh-login-failure", " user="},
	{"invalid user ", "ssh-invalid-user", "invalid user "},
	{"did not receive identification string", "ssh-no-identification", ""},
	{"[preauth]", "ssh-preauth-close", ""},
}

// sshd reads an OpenSSH log line. The address the message names ("from
// <ip>", "rhost=<ip>") is the client, ours; an address before "sshd" is
// the syslog host, the reporter's server. Other sshd lines (Accepted,
// session opened) are not abuse and give no event.
func (p *parser) sshd(line, lower string) (Event, bool) {
	at := strings.Index(lower, "sshd")
	msg, msgLower := line[at:], lower[at:]
	for _, ph := range sshPhrases {
		i := strings.Index(msgLower, ph.phrase)
		if i < 0 {
			continue
		}
		if ph.what == "ssh-preauth-close" && !logtext.ContainsAny(msgLower, "connection closed", "disconnected from", "received disconnect", "connection reset") {
			continue
		}
		ev := Event{Family: "sshd", What: ph.what, Time: p.timeOf(line)}
		if h, ok := ipscan.First(msg); ok {
			ev.Source = h.Addr
		}
		if ph.user != "" {
			if u := strings.Index(msgLower, ph.user); u >= 0 {
				ev.Detail = firstWord(msg[u+len(ph.user):])
			}
		}
		if ev.Detail == "from" || ev.Detail == "by" {
			ev.Detail = "" // "Invalid user  from 198.51.100.4": an empty name
		}
		if hits := ipscan.Hits(line[:at]); len(hits) > 0 {
			ev.Dest = hits[len(hits)-1].Addr
		}
		p.serverTarget(&ev, "")
		return ev, true
	}
	return Event{}, false
}

// firstWord returns the first space-separated word of s.
func firstWord(s string) string {
	s = strings.TrimLeft(s, " \t")
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		s = s[:i]
	}
	return s
}

var (
	reF2BBan    = regexp.MustCompile(`(?:\[([A-Za-z0-9_.@-]{1,64})\]\s+)?\b(Ban|Found)\s+`)
	reF2BMail   = regexp.MustCompile(`(?i)has just been banned by fail2ban after\s+(\d{1,9})\s+attempts?(?:\s+against\s+([A-Za-z0-9_.@-]{1,64}))?`)
	reF2BDetect = regexp.MustCompile(`(?i)detected abuse from the ip address\s+`)
)

// fail2ban reads fail2ban log lines ("NOTICE [sshd] Ban <ip>", "Found
// <ip>") and the lines of its complaint mails ("The IP <ip> has just been
// banned by Fail2Ban after 6 attempts against sshd", "We have detected
// abuse from the IP address <ip>").
func (p *parser) fail2ban(line, lower string) (Event, bool) {
	if m := reF2BMail.FindStringSubmatchIndex(line); m != nil {
		n, _ := strconv.Atoi(line[m[2]:m[3]])
		ev := Event{Family: "fail2ban", What: "ban-attempts", Count: max(n, 1), Time: p.timeOf(line)}
		if m[4] >= 0 {
			ev.Detail = strings.TrimRight(line[m[4]:m[5]], ".") // the jail, without the full stop
		}
		if h, ok := ipscan.First(line[:m[0]]); ok {
			ev.Source = h.Addr
		}
		p.serverTarget(&ev, "")
		return ev, true
	}
	if m := reF2BDetect.FindStringIndex(line); m != nil {
		ev := Event{Family: "fail2ban", What: "reported", Time: p.timeOf(line)}
		if h, ok := ipscan.At(line, m[1]); ok {
			ev.Source = h.Addr
		}
		return ev, true
	}
	if !strings.Contains(lower, "fail2ban") {
		return Event{}, false
	}
	m := reF2BBan.FindStringSubmatchIndex(line)
	if m == nil {
		return Event{}, false
	}
	h, ok := ipscan.At(line, m[1])
	if !ok {
		return Event{}, false
	}
	ev := Event{Family: "fail2ban", What: "ban", Time: p.timeOf(line), Source: h.Addr}
	if line[m[4]:m[5]] == "Found" {
		ev.What = "fail2ban-match"
	}
	if m[2] >= 0 {
		ev.Detail = line[m[2]:m[3]]
	}
	p.serverTarget(&ev, "")
	return ev, true
}

// serverTarget fills the destination of a line from the reporter's own
// server log with the target the report named earlier, when the line names
// none of its own or names the same host. lineHost is the host name the
// line gives, if any.
func (p *parser) serverTarget(ev *Event, lineHost string) {
	t := p.target
	if !t.addr.IsValid() && t.host == "" {
		return
	}
	same := ev.Dest.IsValid() && ev.Dest == t.addr || lineHost != "" && lineHost == t.host
	if !same && (ev.Dest.IsValid() || lineHost != "") {
		return
	}
	if !ev.Dest.IsValid() {
		ev.Dest = t.addr
	}
	if ev.DestHost == "" {
		ev.DestHost = t.host
	}
	if ev.Port == 0 {
		ev.Port = t.port
	}
}

var (
	reTargetLabel = regexp.MustCompile(`(?i)\b(?:target|victim|attacked)(?:[ \t]+(?:ip|host|server|address|system))?[ \t]*:[ \t]*`)
	reNextLabel   = regexp.MustCompile(`\s{2,}[A-Za-z][A-Za-z ]{0,20}:|\s+(?:Time zone|Source(?: IP)?|Reporter|First seen|Protocol)\s*:`)
	rePortWord    = regexp.MustCompile(`(?i)^\s*,?\s*(?:port|on port)\s+(\d{1,5})\b`)
)

// targetLine remembers "Target: shop.example.org (203.0.113.44:443)": the
// reporter's server, which its own logs after this line are about.
func (p *parser) targetLine(line string) {
	loc := reTargetLabel.FindStringIndex(line)
	if loc == nil {
		return
	}
	seg := line[loc[1]:min(len(line), loc[1]+160)]
	if end := reNextLabel.FindStringIndex(seg); end != nil {
		seg = seg[:end[0]]
	}
	var t target
	if f := strings.Fields(seg); len(f) > 0 {
		t.host = ipscan.HostName(strings.SplitN(f[0], ":", 2)[0])
	}
	if h, ok := ipscan.First(seg); ok {
		t.addr, t.port = h.Addr, hitPort(h)
		if m := rePortWord.FindStringSubmatch(seg[h.End:]); m != nil && t.port == 0 {
			t.port = port(m[1])
		}
	}
	if t.addr.IsValid() || t.host != "" {
		p.target = t
	}
}
