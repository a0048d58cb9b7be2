package notice

import (
	"regexp"
	"strings"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/internal/logtext"
)

var (
	reActivityLabel = regexp.MustCompile(`(?im)^[ \t*>-]*Reported Activity\s*:[ \t]*(.*\S)`)
	reVulnLabel     = regexp.MustCompile(`(?im)^[ \t*>-]*Reported Vulnerability\s*:[ \t]*(.*\S)`)
	reClause        = regexp.MustCompile(`(?i)^has\s+been\s+(?:implicated\s+in|(operating\s+in\s+a\s+way\s+that\s+resembles))\s+`)
	reObserved      = regexp.MustCompile(`(?i)observed\s+(.+?)\s+activity\s+from`)
	reReportFor     = regexp.MustCompile(`(?i)abuse report for\s+(.+?)\s+originating`)
	reGenAMalware   = regexp.MustCompile(`(?i)may be infected with malware`)
	reVulnReport    = regexp.MustCompile(`(?i)received a vulnerability report`)
	reHealthCode    = regexp.MustCompile(`\bAWS_ABUSE_([A-Z_]+)_REPORT(?:ED)?\b`)
)

// activityOf returns AWS's own words for the activity and the abuse type,
// looking where FORMATS.md §7 says, in order. The reporter's text only
// narrows AWS's generic content clause.
func activityOf(aws, report doc) (string, abuse.Type) {
	vuln := firstSubmatch(reVulnLabel, aws.lines("reported vulnerability"))
	label := firstSubmatch(reActivityLabel, aws.lines("reported activity"))
	clause := ""
	for from := 0; clause == "" && from < len(aws.lower); {
		i := strings.Index(aws.lower[from:], "has been")
		if i < 0 {
			break
		}
		clause = activityClause(aws.s[from+i:])
		from += i + len("has been")
	}
	followUp := ""
	if aws.has("observed") {
		followUp = firstSubmatch(reObserved, aws.s)
	}
	if followUp == "" && aws.has("abuse report for") {
		followUp = firstSubmatch(reReportFor, aws.s)
	}
	followUp = collapse(followUp)

	activity := label
	switch {
	case activity != "":
	case vuln != "":
		activity = vuln
	case clause != "":
		activity = clause
	default:
		activity = followUp
	}

	var t abuse.Type
	switch {
	case vuln != "" || aws.has("vulnerability report") && reVulnReport.MatchString(aws.s):
		t = abuse.TypeVulnerability
	case label != "":
		t = classify(label)
	case clause != "":
		t = classify(clause)
	case aws.has("infected with malware"):
		t = abuse.TypeMalware
	case followUp != "":
		t = classify(followUp)
	default:
		t = healthType(aws.s)
	}
	if t == abuse.TypeContent {
		t = narrowContent(report.s)
	}
	return activity, t
}

// activityClause reads the clause at the start of aws: the text after "has
// been implicated in" up to the first
// ";" or sentence end; "operating in a way that resembles X" keeps its verb.
func activityClause(aws string) string {
	loc := reClause.FindStringSubmatchIndex(aws)
	if loc == nil {
		return ""
	}
	start := loc[1]
	if loc[2] >= 0 {
		start = loc[2]
	}
	rest := aws[start:]
	return collapse(rest[:clauseEnd(rest)])
}

// clauseEnd returns where the activity clause stops: at the first ";", the
// first full stop followed by white space or the end, or a blank line.
func clauseEnd(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ';':
			return i
		case '.':
			if i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\n' || s[i+1] == '\t' || s[i+1] == '\r' {
				return i
			}
		case '\n':
			j := i + 1
			for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r') {
				j++
			}
			if j < len(s) && s[j] == '\n' {
				return i
			}
		}
	}
	return len(s)
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// typeRules map AWS's wording to a type; the first rule that matches wins,
// so the more specific wordings come first.
var typeRules = []struct {
	needs []string // lower-case literals, one of which the text must hold
	re    *regexp.Regexp
	t     abuse.Type
}{
	{[]string{"vulnerab"}, regexp.MustCompile(`\bvulnerability report\b`), abuse.TypeVulnerability},
	{[]string{"crypto", "coin", "bitcoin", "mining", "miner"}, regexp.MustCompile(`\b(?:crypto\s*-?currency mining|crypto\s*-?mining|coin\s*-?mining|cryptojacking|bitcoin|mining pool|miner)\b`), abuse.TypeCryptoMining},
	{[]string{"copyright", "dmca", "infring"}, regexp.MustCompile(`\b(?:copyright|dmca|infring\w*)\b`), abuse.TypeCopyright},
	{[]string{"phishing"}, regexp.MustCompile(`\bphishing\b`), abuse.TypePhishing},
	{[]string{"spam", "unsolicited", "bulk"}, regexp.MustCompile(`\b(?:spam\w*|unsolicited (?:bulk |commercial )?e-?mail|bulk e-?mail)\b`), abuse.TypeSpam},
	{[]string{"open "}, regexp.MustCompile(`\bopen (?:http |socks )?(?:proxy|proxies|relay|resolver)\b`), abuse.TypeOpenProxy},
	{[]string{"denial", "dos", "flood", "amplification"}, regexp.MustCompile(`\b(?:denial of service|d?dos|flood\w*|amplification)\b`), abuse.TypeDoS},
	{[]string{"scan"}, regexp.MustCompile(`\bport\s*-?scan\w*\b|\bscanning\b`), abuse.TypePortScan},
	{[]string{"intrusion", "brute", "authoriz", "authoris", "exploit", "injection", "hacking", "login", "password"}, regexp.MustCompile(`\b(?:intrusion|brute[\s-]*forc\w*|without authorization|unauthori[sz]ed access|exploit\w*|sql injection|hacking|login attempts?|password guessing)\b`), abuse.TypeIntrusion},
	{[]string{"malware", "botnet", "command", "c&c", "c2", "trojan", "virus", "infected"}, regexp.MustCompile(`\b(?:malware|botnet|command[\s-]*(?:and|&)[\s-]*control|c&c|c2|trojan|virus|infected)\b`), abuse.TypeMalware},
	{[]string{"content", "objectionable", "pii", "personal"}, regexp.MustCompile(`\b(?:content forbidden|forbidden content|objectionable|pii|personal(?:ly identifiable)? information|illegal content|hosting a website that may contain content)\b`), abuse.TypeContent},
}

// classify maps AWS's activity wording to an abuse type.
func classify(s string) abuse.Type {
	s = logtext.Lower(s)
	for _, r := range typeRules {
		if logtext.ContainsAny(s, r.needs...) && r.re.MatchString(s) {
			return r.t
		}
	}
	return abuse.TypeOther
}

var healthTypes = map[string]abuse.Type{
	"DOS": abuse.TypeDoS, "COPYRIGHT_DMCA": abuse.TypeCopyright, "PII_CONTENT_REMOVAL": abuse.TypeContent,
	"SPAM": abuse.TypeSpam, "BITCOIN": abuse.TypeCryptoMining, "PHISHING_CONTENT": abuse.TypePhishing,
}

// healthType reads an AWS Health event code when the notice has no words
// for the activity.
func healthType(aws string) abuse.Type {
	if m := reHealthCode.FindStringSubmatch(aws); m != nil {
		if t, ok := healthTypes[m[1]]; ok {
			return t
		}
	}
	return abuse.TypeOther
}

var (
	rePhishingReport  = regexp.MustCompile(`(?i)\bphish(?:ing)?\b|impersonat\w+ brand`)
	reCopyrightReport = regexp.MustCompile(`(?i)\b(?:copyright|dmca)\b`)
)

// narrowContent turns AWS's generic content clause into phishing or
// copyright when the forwarded report is plainly one of those.
func narrowContent(report string) abuse.Type {
	switch {
	case rePhishingReport.MatchString(report):
		return abuse.TypePhishing
	case reCopyrightReport.MatchString(report):
		return abuse.TypeCopyright
	}
	return abuse.TypeContent
}
