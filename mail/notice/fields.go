package notice

import (
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/internal/ipscan"
	"github.com/abuse-responder/abuse-responder/internal/logtext"
)

// reDelimiter marks where AWS's text ends and the reporter's begins.
var reDelimiter = regexp.MustCompile(`(?im)^[ \t>]*(?:-{2,}\s*Beginning of forwarded report\(?s?\)?\s*-{2,}.*|\*?\s*Log Extract\s*:.*)$`)

// splitReport separates AWS's words from the forwarded report, which is
// untrusted evidence.
func splitReport(d doc) (aws, report doc) {
	text, lower := d.s, d.lower
	best := -1
	if !logtext.ContainsAny(lower, "beginning of forwarded report", "log extract") {
		return d, doc{}
	}
	for _, marker := range []string{"beginning of forwarded report", "log extract"} {
		for from := 0; ; {
			i := strings.Index(lower[from:], marker)
			if i < 0 {
				break
			}
			i += from
			start, end := lineAround(text, i)
			if reDelimiter.MatchString(text[start:end]) {
				if best < 0 || start < best {
					best = start
				}
				break
			}
			from = end
		}
	}
	if best < 0 {
		return d, doc{}
	}
	end := strings.IndexByte(text[best:], '\n')
	if end < 0 {
		return d.slice(0, best), doc{}
	}
	return d.slice(0, best), d.slice(best+end+1, len(text))
}

var (
	reCaseID       = regexp.MustCompile(`\[\s*(\d{8,13}(?:-\d+)?|[A-Z0-9]{6,})\s*\]`)
	reSubjectAcct  = regexp.MustCompile(`(?i)\[\s*AWS\s+ID\s*:?\s*(\d{12})\s*\]`)
	reAccountLabel = regexp.MustCompile(`(?im)^[ \t*>-]*(?:AWS\s+Account\s+ID|AWS\s+ID|Account\s+ID)\s*:[ \t]*(\S*)`)
	reTwelve       = regexp.MustCompile(`^\d{12}$`)
	reBodyCaseID   = regexp.MustCompile(`(?im)^[ \t*>-]*(?:Case\s+(?:ID|Number)|Abuse\s+Case)\s*:?[ \t]*#?\s*(\d{8,13}(?:-\d+)?)\b`)
)

// extract fills the notice's fields from the subject and the body text.
func extract(n *abuse.Notice, subject, outerSubject, text string, ref time.Time) {
	aws, report := splitReport(newDoc(text))
	n.Evidence = strings.TrimSpace(report.s)

	n.CaseID = firstSubmatch(reCaseID, subject, outerSubject)
	if n.CaseID == "" {
		n.CaseID = firstSubmatch(reBodyCaseID, aws.lines("case"))
	}
	n.AccountID = firstSubmatch(reSubjectAcct, subject, outerSubject)
	if n.AccountID == "" {
		n.AccountID = accountFromBody(aws)
	}
	n.Stage = stageOf(aws)
	n.Regions = regionsOf(aws)
	n.Resources = resourcesOf(aws, n.Stage, n.Regions)
	n.ReportedActivity, n.Type = activityOf(aws, report)
	n.AWSActions = awsActionsOf(aws)
	n.AbuseTime = abuseTimeOf(aws, report, ref)

	own := map[netip.Addr]bool{}
	for _, r := range n.Resources {
		if a, err := netip.ParseAddr(r.PublicIP); err == nil {
			own[a] = true
		}
	}
	n.Targets, n.TargetHosts = targetsOf(aws, report, own)
	switch n.Type {
	case abuse.TypePhishing, abuse.TypeContent, abuse.TypeCopyright:
		// The addresses in such reports host the material: ours, not victims.
		n.Targets, n.TargetHosts = []abuse.Target{}, []string{}
	}
}

func firstSubmatch(re *regexp.Regexp, texts ...string) string {
	for _, t := range texts {
		if m := re.FindStringSubmatch(t); m != nil {
			return m[1]
		}
	}
	return ""
}

// accountFromBody reads the account labels, whose value may sit on the next
// line (Gen B's header block). Masked values are skipped.
func accountFromBody(aws doc) string {
	if !aws.has("id") {
		return ""
	}
	text := aws.s
	for _, loc := range reAccountLabel.FindAllStringSubmatchIndex(text, -1) {
		v := text[loc[2]:loc[3]]
		if v == "" {
			v = nextLineValue(text[loc[1]:])
		}
		if len(v) == 14 && v[4] == '-' && v[9] == '-' {
			v = v[:4] + v[5:9] + v[10:] // the console writes 1111-2222-3333
		}
		if reTwelve.MatchString(v) {
			return v
		}
	}
	return ""
}

// nextLineValue returns the first field of the first non-empty line.
func nextLineValue(rest string) string {
	for _, l := range strings.SplitN(rest, "\n", 4)[1:] {
		if f := strings.Fields(l); len(f) > 0 {
			return f[0]
		}
	}
	return ""
}

var (
	finalPhrases      = []string{"final notification"}
	additionalPhrases = []string{"we recently sent an abuse report for", "received an additional abuse report",
		"report is for a different instance", "names a different instance", "name a different instance"}
	reminderPhrases = []string{"not received a response regarding the abuse report",
		"follow up on your outstanding ec2 abuse report", "follow up on your outstanding abuse report",
		"have not heard back from you regarding this case"}
)

// stageOf applies FORMATS.md §5: the first match wins.
func stageOf(aws doc) abuse.Stage {
	if !aws.has("final", "recently sent", "additional", "different instance", "follow up", "not received", "not heard") {
		return abuse.StageNotice
	}
	// Phrases may be split by a line break: compare with white space collapsed.
	flat := strings.Join(strings.Fields(aws.lower), " ")
	switch {
	case logtext.ContainsAny(flat, finalPhrases...):
		return abuse.StageFinal
	case logtext.ContainsAny(flat, additionalPhrases...):
		return abuse.StageAdditionalReport
	case logtext.ContainsAny(flat, reminderPhrases...):
		return abuse.StageReminder
	}
	return abuse.StageNotice
}

const regionPattern = `[a-z]{2}(?:-gov|-iso[a-z]?)?-(?:north|south|east|west|central|northeast|northwest|southeast|southwest)-\d{1,2}`

var (
	reRegion      = regexp.MustCompile(regionPattern)
	reRegionStart = regexp.MustCompile(`^(?:` + regionPattern + `)\b`)
)

// regionsOf lists the distinct regions AWS names, in order.
func regionsOf(aws doc) []string {
	var out orderedSet
	if !aws.has("region") {
		return out.items()
	}
	for _, line := range strings.Split(aws.lines("region"), "\n") {
		for _, r := range labelledRegions(line) {
			out.add(r)
		}
	}
	return out.items()
}

// labelledRegions reads "Region: eu-west-1", "Region(s): us-east-1,
// eu-west-1", "Regions: a and b" anywhere in a line.
func labelledRegions(line string) []string {
	var out []string
	lower := logtext.Lower(line)
	for from := 0; ; {
		i := strings.Index(lower[from:], "region")
		if i < 0 {
			return out
		}
		i += from
		from = i + len("region")
		if i > 0 && logtext.IsWordByte(lower[i-1]) {
			continue
		}
		rest := lower[from:]
		switch {
		case strings.HasPrefix(rest, "(s)"):
			rest = rest[3:]
		case strings.HasPrefix(rest, "s"):
			rest = rest[1:]
		}
		rest = strings.TrimLeft(rest, " \t")
		if !strings.HasPrefix(rest, ":") {
			continue
		}
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " \t")
			r := reRegionStart.FindString(rest)
			if r == "" {
				break
			}
			out = append(out, r)
			rest = strings.TrimLeft(rest[len(r):], " \t")
			switch {
			case strings.HasPrefix(rest, ","), strings.HasPrefix(rest, "/"):
				rest = rest[1:]
			case strings.HasPrefix(rest, "and "):
				rest = rest[4:]
			default:
				rest = ""
			}
		}
	}
}

var (
	reInstanceID = regexp.MustCompile(`\bi-(?:[0-9a-f]{17}|[0-9a-f]{8})\b`)
	reBracketIP  = regexp.MustCompile(`^\s*\[\s*([^\]\s]+)\s*\]`)
	reDifferent  = regexp.MustCompile(`(?i)different instance\s*:?\s*`)
)

// resourcesOf reads the instances AWS names: resource lines, Implicated
// Resource labels and Gen A's Instance Id. In an additional report only the
// newly reported instance counts.
func resourcesOf(aws doc, stage abuse.Stage, regions []string) []abuse.Resource {
	if stage == abuse.StageAdditionalReport && aws.has("different instance") {
		if loc := reDifferent.FindStringIndex(aws.s); loc != nil {
			rest := aws.s[loc[1]:]
			if id := reInstanceID.FindString(rest); id != "" && strings.Index(rest, id) < 4 {
				return []abuse.Resource{{InstanceID: id, Region: onlyRegion(regions)}}
			}
		}
	}
	out := []abuse.Resource{}
	seen := map[string]bool{}
	lines, lower := aws.split()
	for i, line := range lines {
		if !instanceLabel(lower[i]) {
			if r, ok := addressResource(line, lower[i], regions); ok && !seen[r.PublicIP] {
				seen[r.PublicIP] = true
				out = append(out, r)
			}
			continue
		}
		ids := instanceIDs(line)
		if len(ids) == 0 {
			if r, ok := addressResource(line, lower[i], regions); ok {
				if !seen[r.PublicIP] {
					seen[r.PublicIP] = true
					out = append(out, r)
				}
				continue
			}
		}
		if len(ids) == 0 && i+1 < len(lines) {
			// The value may sit on the next line.
			line = lines[i+1]
			ids = instanceIDs(line)
		}
		lineRegion := ""
		if rs := labelledRegions(line); len(rs) > 0 {
			lineRegion = rs[0]
		}
		for _, loc := range ids {
			if !idBoundary(line, loc[1]) { // masked: i-0bdd5302XXXXXXXXX
				continue
			}
			id := line[loc[0]:loc[1]]
			if seen[id] {
				continue
			}
			seen[id] = true
			r := abuse.Resource{InstanceID: id, Region: lineRegion}
			if r.Region == "" {
				r.Region = onlyRegion(regions)
			}
			if m := reBracketIP.FindStringSubmatch(line[loc[1]:]); m != nil {
				if a, ok := ipscan.ParseAddr(m[1]); ok {
					r.PublicIP = a.String()
				}
			}
			out = append(out, r)
		}
	}
	return out
}

// reAddressLabel finds the address label of a resource that AWS names by
// its address alone ("Implicated Resource: Elastic IP: 198.51.100.5").
var reAddressLabel = regexp.MustCompile(`(?i)\b(?:elastic ip|eip|public ip|ip address|ip|address)\s*:?[ \t]*\[?`)

// addressResource reads a resource line that names an address and no
// instance; analysis then finds the instance from the address.
func addressResource(line, lower string, regions []string) (abuse.Resource, bool) {
	if !strings.Contains(lower, "implicated resource") && !(strings.Contains(lower, "aws id") && strings.Contains(lower, "region")) {
		return abuse.Resource{}, false
	}
	for _, loc := range reAddressLabel.FindAllStringIndex(line, -1) {
		h, ok := ipscan.At(line, loc[1])
		if !ok {
			continue
		}
		r := abuse.Resource{PublicIP: h.Addr.String(), Region: onlyRegion(regions)}
		if rs := labelledRegions(line); len(rs) > 0 {
			r.Region = rs[0]
		}
		return r, true
	}
	return abuse.Resource{}, false
}

// instanceIDs returns the [start, end) of each instance ID in line: "i-"
// and 8 or 17 lower-case hex digits, as a whole word.
func instanceIDs(line string) [][2]int {
	var out [][2]int
	for from := 0; ; {
		i := strings.Index(line[from:], "i-")
		if i < 0 {
			return out
		}
		i += from
		from = i + 2
		if i > 0 && logtext.IsWordByte(line[i-1]) {
			continue
		}
		j := i + 2
		for j < len(line) && (isDigit(line[j]) || line[j] >= 'a' && line[j] <= 'f') {
			j++
		}
		if n := j - i - 2; n == 8 || n == 17 {
			out = append(out, [2]int{i, j})
		}
	}
}

// instanceLabel reports whether a lower-case line labels instances:
// "Instance Id:", "EC2 Instance ID :", "Implicated Resource(s):",
// "different instance:". A literal scan: this runs on every line of AWS's
// text.
func instanceLabel(lower string) bool {
	for _, label := range [...]string{"instance", "implicated resource"} {
		for rest := lower; ; {
			i := strings.Index(rest, label)
			if i < 0 {
				break
			}
			rest = rest[i+len(label):]
			r := strings.TrimLeft(rest, " \t")
			if label == "instance" {
				r = strings.TrimPrefix(r, "id")
				r = strings.TrimPrefix(r, "s")
			} else if !strings.HasPrefix(r, "(s)") {
				r = strings.TrimPrefix(r, "s")
			} else {
				r = r[3:]
			}
			if strings.HasPrefix(strings.TrimLeft(r, " \t"), ":") {
				return true
			}
		}
	}
	return false
}

// idBoundary rejects a match that continues with more ID-like characters,
// such as the masked i-0bdd5302XXXXXXXXX.
func idBoundary(s string, end int) bool {
	if end >= len(s) {
		return true
	}
	c := s[end]
	return !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '*')
}

func onlyRegion(regions []string) string {
	if len(regions) == 1 {
		return regions[0]
	}
	return ""
}

var (
	reActionsIntro = regexp.MustCompile(`(?i)we have taken the following (?:steps|actions?)\s*:?`)
	reBlocked      = regexp.MustCompile(`(?i)^blocked\b`)
)

// awsActionsOf lists the blocks AWS says it applied (FORMATS.md §6).
func awsActionsOf(aws doc) []string {
	var out orderedSet
	if !aws.has("following") {
		return out.items()
	}
	loc := reActionsIntro.FindStringIndex(aws.s)
	if loc == nil {
		return out.items()
	}
	for _, l := range strings.Split(aws.s[loc[1]:], "\n") {
		l = strings.TrimSpace(strings.Trim(strings.TrimSpace(l), "*-•·"))
		if l == "" {
			continue
		}
		if !reBlocked.MatchString(l) {
			break
		}
		out.add(strings.Join(strings.Fields(l), " "))
	}
	return out.items()
}
