package notice

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// zoneAbbrev are the zone names seen in reports (FORMATS.md §8), as offsets
// in minutes east of UTC.
var zoneAbbrev = map[string]int{
	"UTC": 0, "GMT": 0, "Z": 0, "UT": 0, "WET": 0,
	"CET": 60, "MET": 60, "BST": 60, "WEST": 60,
	"CEST": 120, "MEST": 120, "EET": 120, "SAST": 120,
	"EEST": 180, "MSK": 180,
	"IST": 330,
	"SGT": 480, "HKT": 480, "AWST": 480,
	"JST": 540, "KST": 540,
	"AEST": 600, "AEDT": 660, "NZST": 720, "NZDT": 780,
	"EDT": -240, "EST": -300, "CDT": -300, "CST": -360, "MDT": -360,
	"MST": -420, "PDT": -420, "PST": -480, "AKDT": -480, "AKST": -540, "HST": -600,
}

const (
	monthNames = `(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?`
	dayNames   = `(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?`
	// zoneTail is an optional zone right after a time: an offset, a
	// UTC±h form, an abbreviation, possibly with "(CEST)" after it.
	zoneTail = `(?:[ \t]*((?:UTC|GMT)?[ \t]*[+-]\d{1,2}(?::?\d{2})?|[A-Z]{1,5}\b)(?:[ \t]*\([A-Z]{2,5}\))?)?`
)

// timeForm is one way reports write a timestamp. Each submatch is named.
type timeForm struct {
	re *regexp.Regexp
	// need is a literal that the form cannot match without: a cheap test first.
	need func(string) bool
	// hasYear is false for syslog stamps, which take the year from the mail.
	hasYear bool
}

var timeForms = []timeForm{
	// 2026-04-02T02:21:07Z, 2026-04-10 07:31:00.000 UTC, 2026-04-08 18:59:08,412, 2026-03-30 06:58 UTC
	{need: hasISODate, re: regexp.MustCompile(`\b(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,]\d+)?)?(?P<z>Z\b|` + zoneTail + `)`), hasYear: true},
	// 2015/01/21 10:56:10 (nginx error log)
	{need: hasSlashDate, re: regexp.MustCompile(`\b(?P<y>\d{4})/(?P<mo>\d{2})/(?P<d>\d{2})[ T](?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})(?P<z>` + zoneTail + `)`), hasYear: true},
	// [20/Apr/2026:21:02:13 +0000]
	{need: hasSlash, re: regexp.MustCompile(`\b(?P<d>\d{1,2})/` + monthNames + `/(?P<y>\d{4}):(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})(?P<z>` + zoneTail + `)`), hasYear: true},
	// Sun Apr 05 02:14:55 UTC 2026, [Mon Apr 20 21:02:13 2026], Mon Apr 20 21:02:13.123456 2026
	{need: hasDayAndMonth, re: regexp.MustCompile(`\b` + dayNames + `[ \t]+` + monthNames + `[ \t]+(?P<d>\d{1,2})[ \t]+(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})(?:\.\d+)?(?P<z>` + zoneTail + `)[ \t]+(?P<y>\d{4})\b`), hasYear: true},
	// Sat, 11 Apr 2026 12:41:09 +0200 (CEST), 14 Apr 2026 01:47:02 UTC
	{need: hasMonth, re: regexp.MustCompile(`\b(?:` + dayNames + `[ \t]*)?(?P<d>\d{1,2})[ \t]+` + monthNames + `[ \t]+(?P<y>\d{4})[ \t]+(?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?(?P<z>` + zoneTail + `)`), hasYear: true},
	// April 14, 2026 01:47:02 UTC; Apr 14, 2026 at 1:47 AM PDT (US long form)
	{need: hasMonth, re: regexp.MustCompile(`\b` + monthNames + `[ \t]+(?P<d>\d{1,2}),?[ \t]+(?P<y>\d{4}),?[ \t]+(?:at[ \t]+)?(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?(?:[ \t]*(?P<ampm>[AaPp]\.?[Mm]\.?))?(?P<z>` + zoneTail + `)`), hasYear: true},
	// Apr  8 18:59:01 (syslog: no year, no zone)
	{need: hasMonth, re: regexp.MustCompile(`\b` + monthNames + `[ \t]+(?P<d>\d{1,2})[ \t]+(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})\b(?P<z>` + zoneTail + `)`), hasYear: false},
}

func hasSlash(s string) bool { return strings.IndexByte(s, '/') >= 0 }

// hasISODate reports "dddd-dd-dd" in s, hasSlashDate "dddd/dd/dd".
func hasISODate(s string) bool   { return hasNumericDate(s, '-') }
func hasSlashDate(s string) bool { return hasNumericDate(s, '/') }

func hasNumericDate(s string, sep byte) bool {
	for i := strings.IndexByte(s, sep); i >= 0 && i+6 <= len(s); {
		if i >= 4 && isDigit(s[i-1]) && isDigit(s[i-4]) && isDigit(s[i+1]) && isDigit(s[i+2]) && s[i+3] == sep {
			return true
		}
		j := strings.IndexByte(s[i+1:], sep)
		if j < 0 {
			break
		}
		i += j + 1
	}
	return false
}

// hasDayAndMonth reports an English day and month abbreviation in s.
func hasDayAndMonth(s string) bool {
	return hasMonth(s) && containsAny(s, "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
}

// hasMonth reports whether s holds an English month abbreviation.
func hasMonth(s string) bool {
	for _, m := range [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// hasClock reports whether s holds "d:dd", which every timestamp form has.
func hasClock(s string) bool {
	for i := 1; i+2 < len(s); i++ {
		if s[i] == ':' && isDigit(s[i-1]) && isDigit(s[i+1]) && isDigit(s[i+2]) {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

var monthIndex = map[string]time.Month{
	"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
	"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}

// stamp is a timestamp found in text, not yet placed in a zone.
type stamp struct {
	start, end int
	y          int
	mo         time.Month
	d          int
	h, mi, s   int
	hasYear    bool
	offset     int  // minutes east of UTC, valid when zoned
	zoned      bool // the text gave a zone next to the time
}

// findStamp returns the leftmost timestamp in s (the longest at equal start).
func findStamp(s string) (stamp, bool) {
	var best stamp
	found := false
	if !hasClock(s) {
		return best, false
	}
	for _, f := range timeForms {
		if !f.need(s) {
			continue
		}
		loc := f.re.FindStringSubmatchIndex(s)
		if loc == nil {
			continue
		}
		st, ok := readStamp(f, s, loc)
		if !ok {
			continue
		}
		if !found || st.start < best.start || st.start == best.start && st.end > best.end {
			best, found = st, true
		}
		if best.start == 0 {
			break // nothing starts earlier; the forms are ordered most specific first
		}
	}
	return best, found
}

func readStamp(f timeForm, s string, loc []int) (stamp, bool) {
	st := stamp{start: loc[0], end: loc[1], hasYear: f.hasYear}
	get := func(name string) string {
		i := f.re.SubexpIndex(name)
		if i < 0 || loc[2*i] < 0 {
			return ""
		}
		return s[loc[2*i]:loc[2*i+1]]
	}
	num := func(name string) int { n, _ := strconv.Atoi(get(name)); return n }
	st.y, st.d, st.h, st.mi, st.s = num("y"), num("d"), num("h"), num("mi"), num("s")
	if m := get("mo"); m != "" {
		st.mo = time.Month(num("mo"))
	} else {
		// The month name is the first unnamed group in every form that has one.
		for i := 1; i < len(loc)/2; i++ {
			if loc[2*i] >= 0 && f.re.SubexpNames()[i] == "" {
				if mo, ok := monthIndex[strings.ToLower(s[loc[2*i]:loc[2*i]+3])]; ok {
					st.mo = mo
					break
				}
			}
		}
	}
	if ampm := strings.ToLower(strings.ReplaceAll(get("ampm"), ".", "")); ampm != "" {
		if st.h < 1 || st.h > 12 {
			return stamp{}, false
		}
		if ampm == "pm" && st.h < 12 {
			st.h += 12
		} else if ampm == "am" && st.h == 12 {
			st.h = 0
		}
	}
	if st.mo < 1 || st.mo > 12 || st.d < 1 || st.d > 31 || st.h > 23 || st.mi > 59 || st.s > 60 {
		return stamp{}, false
	}
	checkYear := st.y
	if !st.hasYear {
		checkYear = 2000 // a leap year, so that a syslog "Feb 29" stays possible
	}
	if time.Date(checkYear, st.mo, st.d, 0, 0, 0, 0, time.UTC).Day() != st.d {
		return stamp{}, false // 31 Apr or 30 Feb: not a date
	}
	z := get("z")
	if i := strings.IndexByte(z, '('); i >= 0 {
		z = z[:i] // "+0200 (CEST)": the offset beats the name
	}
	if z = strings.TrimSpace(z); z != "" {
		off, ok := parseZone(z)
		if !ok {
			// A word after the time that is not a zone ("root", "host"):
			// the stamp is unzoned and ends before it.
			st.end = loc[2*f.re.SubexpIndex("z")]
		} else {
			st.offset, st.zoned = off, true
		}
	}
	return st, true
}

var reOffset = regexp.MustCompile(`^(?:UTC|GMT)?[ \t]*([+-])(\d{1,2})(?::?(\d{2}))?$`)

// parseZone reads "+0200", "UTC+9", "UTC-05:00", "Z" or a known abbreviation.
func parseZone(z string) (int, bool) {
	if m := reOffset.FindStringSubmatch(z); m != nil {
		h, _ := strconv.Atoi(m[2])
		mi, _ := strconv.Atoi(m[3])
		if h > 14 || mi > 59 {
			return 0, false
		}
		off := h*60 + mi
		if m[1] == "-" {
			off = -off
		}
		return off, true
	}
	off, ok := zoneAbbrev[strings.ToUpper(z)]
	if ok && z != strings.ToUpper(z) {
		return 0, false // zones are written in capitals; "Ban" or "Mon" is not one
	}
	return off, ok
}

// at places the stamp in time: its own zone, else the stated zone of the
// report, else UTC. A syslog stamp takes its year from ref, the mail's date,
// and the year before when that would put it over a day after ref.
func (st stamp) at(stated *statedZone, ref time.Time) time.Time {
	off := 0
	switch {
	case st.zoned:
		off = st.offset
	case stated != nil:
		off = stated.offsetAt(st)
	}
	y := st.y
	if !st.hasYear {
		y = ref.Year()
		if ref.IsZero() {
			y = time.Now().UTC().Year()
		}
	}
	t := time.Date(y, st.mo, st.d, st.h, st.mi, st.s, 0, time.FixedZone("", off*60))
	if !st.hasYear && !ref.IsZero() && t.After(ref.Add(24*time.Hour)) {
		t = t.AddDate(-1, 0, 0)
	}
	return t.UTC()
}

// statedZone is a zone a report declares for its lines, such as "(time zone
// is UTC)". Some give a winter and a summer offset ("UTC+1/MET or
// UTC+2/MEST"); then the EU summer-time rule picks one.
type statedZone struct {
	winter, summer int
	seasonal       bool
}

func (z *statedZone) offsetAt(st stamp) int {
	if !z.seasonal {
		return z.winter
	}
	y := st.y
	if !st.hasYear {
		y = time.Now().Year()
	}
	utc := time.Date(y, st.mo, st.d, st.h, st.mi, st.s, 0, time.UTC).Add(-time.Duration(z.winter) * time.Minute)
	if euSummerTime(utc) {
		return z.summer
	}
	return z.winter
}

// euSummerTime reports whether t (UTC) falls between 01:00 UTC on the last
// Sunday of March and 01:00 UTC on the last Sunday of October.
func euSummerTime(t time.Time) bool {
	lastSunday := func(m time.Month) time.Time {
		d := time.Date(t.Year(), m+1, 1, 1, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
		for d.Weekday() != time.Sunday {
			d = d.AddDate(0, 0, -1)
		}
		return d
	}
	return !t.Before(lastSunday(time.March)) && t.Before(lastSunday(time.October))
}

var (
	reZoneStatement = regexp.MustCompile(`(?i)time\s*-?zone|times are|all times|times? (?:in|shown in)|timestamps?\s*\((?:utc|gmt)|\((?:utc|gmt)\)|local time`)
	reZoneOffsetAny = regexp.MustCompile(`(?:\b(?:UTC|GMT)[ \t]*[+-]\d{1,2}(?::?\d{2})?|[+-]\d{4}\b)`)
	reZoneWord      = regexp.MustCompile(`\b[A-Z]{1,5}\b`)
)

// statedZoneOf finds a zone statement in a report. A numeric offset beats
// an abbreviation on the same statement.
func statedZoneOf(report doc) *statedZone {
	if !report.has("time", "utc", "gmt") {
		return nil
	}
	lines, lower := report.split()
	for i, line := range lines {
		if !containsAny(lower[i], "time", "utc", "gmt") {
			continue
		}
		loc := reZoneStatement.FindStringIndex(line)
		if loc == nil {
			continue
		}
		// Look around the statement, not at timestamps elsewhere on the line.
		from := max(0, loc[0]-12)
		seg := line[from:min(len(line), loc[1]+60)]
		var offs []int
		for _, o := range reZoneOffsetAny.FindAllString(seg, -1) {
			if off, ok := parseZone(strings.ReplaceAll(o, " ", "")); ok {
				offs = append(offs, off)
			}
		}
		if len(offs) >= 2 && offs[1] > offs[0] {
			return &statedZone{winter: offs[0], summer: offs[1], seasonal: true}
		}
		if len(offs) >= 1 {
			return &statedZone{winter: offs[0]}
		}
		for _, w := range reZoneWord.FindAllString(seg, -1) {
			if off, ok := zoneAbbrev[w]; ok {
				return &statedZone{winter: off}
			}
		}
	}
	return nil
}

var reAbuseTimeLabel = regexp.MustCompile(`(?im)^[ \t*>-]*Abuse Time\s*:[ \t]*(.*\S)?`)

// abuseTimeOf reads the Abuse Time label, else the first timestamp in the
// reporter's text in the zone the report states (FORMATS.md §10).
func abuseTimeOf(aws, report doc, ref time.Time) *time.Time {
	for _, m := range reAbuseTimeLabel.FindAllStringSubmatch(aws.lines("abuse time"), -1) {
		if st, ok := findStamp(m[1]); ok {
			return timePtr(st.at(nil, ref))
		}
	}
	stated := statedZoneOf(report)
	for _, line := range strings.Split(report.s, "\n") {
		if st, ok := findStamp(line); ok {
			return timePtr(st.at(stated, ref))
		}
	}
	return nil
}
