package notice

import (
	"regexp"
	"strings"

	"github.com/abuse-responder/abuse-responder/abuse"
)

var (
	reActivityLabel = regexp.MustCompile(`(?im)^[ \t*>-]*Reported Activity\s*:[ \t]*(.*\S)`)
	reVulnLabel     = regexp.MustCompile(`(?im)^[ \t*>-]*Reported Vulnerability\s*:[ \t]*(.*\S)`)
	reClause        = regexp.MustCompile(`(?i)has been (?:implicated in|(operating in a way that resembles))\s+`)
	reClauseEnd     = regexp.MustCompile(`;|\.(?:\s|$)|\n[ \t]*\n`)
	reObserved      = regexp.MustCompile(`(?i)observed\s+(.+?)\s+activity\s+from`)
	reReportFor     = regexp.MustCompile(`(?i)abuse report for\s+(.+?)\s+originating`)
	reGenAMalware   = regexp.MustCompile(`(?i)may be infected with malware`)
	reVulnReport    = regexp.MustCompile(`(?i)received a vulnerability report`)
	reHealthCode    = regexp.MustCompile(`\bAWS_ABUSE_([A-Z_]+)_REPORT(?:ED)?\b`)
)

// activityOf returns AWS's own words for the activity and the abuse type,
// looking where FORMATS.md §7 says, in order. The reporter's text only
// narrows AWS's generic content clause.
func activityOf(aws, report string) (string, abuse.Type) {
	vuln := firstSubmatch(reVulnLabel, aws)
	label := firstSubmatch(reActivityLabel, aws)
	clause := activityClause(aws)
	followUp := firstSubmatch(reObserved, aws)
	if followUp == "" {
		followUp = firstSubmatch(reReportFor, aws)
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
	case vuln != "" || reVulnReport.MatchString(aws):
		t = abuse.TypeVulnerability
	case label != "":
		t = classify(label)
	case clause != "":
		t = classify(clause)
	case reGenAMalware.MatchString(aws):
		t = abuse.TypeMalware
	case followUp != "":
		t = classify(followUp)
	default:
		t = healthType(aws)
	}
	if t == abuse.TypeContent {
		t = narrowContent(report)
	}
	return activity, t
}

// activityClause is the text after "has been implicated in" up to the first
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
	if end := reClauseEnd.FindStringIndex(rest); end != nil {
		rest = rest[:end[0]]
	}
	return collapse(rest)
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// typeRules map AWS's wording to a type; the first rule that matches wins,
// so the more specific wordings come first.
var typeRules = []struct {
	re *regexp.Regexp
	t  abuse.Type
}{
	{regexp.MustCompile(`(?i)\bvulnerability report\b`), abuse.TypeVulnerability},
	{regexp.MustCompile(`(?i)\b(?:crypto\s*-?currency mining|crypto\s*-?mining|coin\s*-?mining|cryptojacking|bitcoin|mining pool|miner)\b`), abuse.TypeCryptoMining},
	{regexp.MustCompile(`(?i)\b(?:copyright|dmca|infring\w*)\b`), abuse.TypeCopyright},
	{regexp.MustCompile(`(?i)\bphishing\b`), abuse.TypePhishing},
	{regexp.MustCompile(`(?i)\b(?:spam\w*|unsolicited (?:bulk |commercial )?e-?mail|bulk e-?mail)\b`), abuse.TypeSpam},
	{regexp.MustCompile(`(?i)\bopen (?:http |socks )?(?:proxy|proxies|relay|resolver)\b`), abuse.TypeOpenProxy},
	{regexp.MustCompile(`(?i)\b(?:denial of service|d?dos|flood\w*|amplification)\b`), abuse.TypeDoS},
	{regexp.MustCompile(`(?i)\bport\s*-?scan\w*\b|\bscanning\b`), abuse.TypePortScan},
	{regexp.MustCompile(`(?i)\b(?:intrusion|brute[\s-]*forc\w*|without authorization|unauthori[sz]ed access|exploit\w*|sql injection|hacking|login attempts?|password guessing)\b`), abuse.TypeIntrusion},
	{regexp.MustCompile(`(?i)\b(?:malware|botnet|command[\s-]*(?:and|&)[\s-]*control|c&c|c2|trojan|virus|infected)\b`), abuse.TypeMalware},
	{regexp.MustCompile(`(?i)\b(?:content forbidden|forbidden content|objectionable|pii|personal(?:ly identifiable)? information|illegal content|hosting a website that may contain content)\b`), abuse.TypeContent},
}

// classify maps AWS's activity wording to an abuse type.
func classify(s string) abuse.Type {
	for _, r := range typeRules {
		if r.re.MatchString(s) {
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
