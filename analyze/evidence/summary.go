package evidence

import (
	"net/netip"
	"strconv"
	"time"
)

// Summarize groups events by (What, Dest, Port, Protocol), in order of
// first appearance, with their count, time span and a line of text.
func Summarize(events []Event) []Summary {
	type key struct {
		what  string
		dest  netip.Addr
		port  uint16
		proto string
	}
	index := map[key]int{}
	out := []Summary{}
	for _, ev := range events {
		k := key{ev.What, ev.Dest, ev.Port, ev.Protocol}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, Summary{What: ev.What, Dest: ev.Dest, Port: ev.Port, Protocol: ev.Protocol})
		}
		s := &out[i]
		s.Count += ev.Count
		if s.DestHost == "" {
			s.DestHost = ev.DestHost
		}
		if ev.Time != nil {
			if s.First == nil || ev.Time.Before(*s.First) {
				t := *ev.Time
				s.First = &t
			}
			if s.Last == nil || ev.Time.After(*s.Last) {
				t := *ev.Time
				s.Last = &t
			}
		}
	}
	for i := range out {
		out[i].Text = SummaryText(out[i])
	}
	return out
}

// nouns name each kind of event, singular and plural, and the word that
// introduces its target.
var nouns = map[string]struct{ one, many, prep string }{
	"ssh-login-failure":     {"SSH login failure", "SSH login failures", "against"},
	"ssh-invalid-user":      {"SSH login with an invalid user", "SSH logins with invalid users", "against"},
	"ssh-no-identification": {"SSH connection without identification", "SSH connections without identification", "to"},
	"ssh-preauth-close":     {"SSH connection closed before authentication", "SSH connections closed before authentication", "to"},
	"ban":                   {"fail2ban ban", "fail2ban bans", "on"},
	"ban-attempts":          {"attempt that led to a fail2ban ban", "attempts that led to a fail2ban ban", "against"},
	"fail2ban-match":        {"fail2ban match", "fail2ban matches", "on"},
	"reported":              {"abuse report", "abuse reports", "from"},
	"http-request":          {"HTTP request", "HTTP requests", "to"},
	"waf-block":             {"WAF block", "WAF blocks", "on"},
	"waf-alert":             {"WAF alert", "WAF alerts", "on"},
	"blocked-packet":        {"blocked packet", "blocked packets", "to"},
	"packet":                {"logged packet", "logged packets", "to"},
	"port-probe":            {"port probe", "port probes", "of"},
	"connection":            {"connection", "connections", "to"},
	"dos":                   {"DoS detection", "DoS detections", "against"},
	"spam-delivery":         {"spam delivery", "spam deliveries", "to"},
	"vulnerable-service":    {"vulnerable service report", "vulnerable service reports", "on"},
	"login-attack":          {"login attack", "login attacks", "against"},
}

// SummaryText writes a summary for people: "37 SSH login failures against
// 203.0.113.5:22, 04:12–04:19 UTC". One time (to the minute) reads "at
// 04:12 UTC"; a span over several days gives dates; no time, no clause.
func SummaryText(s Summary) string {
	n, ok := nouns[s.What]
	if !ok {
		n.one, n.many, n.prep = s.What+" event", s.What+" events", "against"
	}
	text := strconv.Itoa(s.Count) + " " + n.many
	if s.Count == 1 {
		text = "1 " + n.one
	}
	if t := targetText(s); t != "" {
		text += " " + n.prep + " " + t
	}
	if w := span(s.First, s.Last); w != "" {
		text += ", " + w
	}
	return text
}

// targetText writes the target: "203.0.113.5:22/tcp", "shop.example.org
// (203.0.113.44:443)", "shop.example.org:443", "port 22", or "".
func targetText(s Summary) string {
	hostPort := func(h string) string {
		if s.Port != 0 {
			return h + ":" + strconv.Itoa(int(s.Port))
		}
		return h
	}
	var t string
	switch {
	case s.Dest.IsValid():
		a := s.Dest.String()
		if s.Dest.Is6() && s.Port != 0 {
			a = "[" + a + "]"
		}
		t = hostPort(a)
		if s.DestHost != "" {
			t = s.DestHost + " (" + t + ")"
		}
	case s.DestHost != "":
		t = hostPort(s.DestHost)
	case s.Port != 0:
		t = "port " + strconv.Itoa(int(s.Port))
	}
	if s.Protocol != "" && t != "" {
		if s.Port != 0 {
			t += "/" + s.Protocol
		} else {
			t += " (" + s.Protocol + ")"
		}
	}
	return t
}

// span writes the time clause of a summary.
func span(first, last *time.Time) string {
	if first == nil || last == nil {
		return ""
	}
	f, l := first.UTC(), last.UTC()
	switch {
	case f.Format("2006-01-02 15:04") == l.Format("2006-01-02 15:04"):
		return "at " + f.Format("15:04") + " UTC"
	case f.Format("2006-01-02") == l.Format("2006-01-02"):
		return f.Format("15:04") + "–" + l.Format("15:04") + " UTC"
	}
	return f.Format("2006-01-02 15:04") + " – " + l.Format("2006-01-02 15:04") + " UTC"
}
