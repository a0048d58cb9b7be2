// Package logtime finds timestamps in log lines and report text and places
// them in UTC, following the rules of FORMATS.md §8: a zone written next to
// the time beats a zone the report states elsewhere ("(time zone is UTC)"),
// which beats UTC; a syslog stamp without a year takes the year of the mail
// that carried it. It is shared by the notice parser and the evidence
// parser so that both read times the same way.
package logtime

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

const (
	monthNames = `(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?`
	dayNames   = `(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?`
	// zoneTail is an optional zone right after a time: an offset, a
	// UTC±h form, an abbreviation, possibly with "(CEST)" after it.
	zoneTail = `(?:[ \t]*((?:UTC|GMT)?[ \t]*[+-]\d{1,2}(?::?\d{2})?|[A-Z]{1,5}\b)(?:[ \t]*\([A-Z]{2,5}\))?)?`
)

// form is one way reports write a timestamp. Each submatch is named.
type form struct {
	re *regexp.Regexp
	// need is a literal test that the form cannot match without: cheap, so
	// that most lines never reach the regexp.
	need func(string) bool
	// hasYear is false for syslog stamps, which take the year from the mail.
	hasYear bool
}

// forms are ordered most specific first: Find stops at a match at the start
// of the text.
var forms = []form{
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
	if !hasMonth(s) {
		return false
	}
	for _, d := range [...]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"} {
		if strings.Contains(s, d) {
			return true
		}
	}
	return false
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

// Stamp is a timestamp found in text, not yet placed in a zone. Start and
// End are byte offsets of the stamp in the text searched.
type Stamp struct {
	Start, End int
	Year       int // valid when HasYear
	Month      time.Month
	Day        int
	Hour       int
	Minute     int
	Second     int
	// HasYear is false for syslog stamps ("Apr  8 18:59:01"); Time then
	// takes the year from the mail's date.
	HasYear bool
	// Offset is the zone written next to the time, in minutes east of UTC;
	// valid when Zoned.
	Offset int
	Zoned  bool
}

// Find returns the leftmost timestamp in s (the longest at equal start),
// in any of the forms of FORMATS.md §8. A date that does not exist
// (31 Apr) is not a timestamp. Find runs in time linear in len(s).
func Find(s string) (Stamp, bool) {
	// Log lines put their time first: search the head of a long line
	// before all of it. A stamp that ends well inside the head is the
	// leftmost of the whole line too, as no stamp is longer than the margin.
	if len(s) > headLen {
		if st, ok := find(s[:headLen]); ok && st.End <= headLen-maxStampLen {
			return st, true
		}
	}
	return find(s)
}

const (
	headLen     = 160
	maxStampLen = 64
)

func find(s string) (Stamp, bool) {
	var best Stamp
	found := false
	if !hasClock(s) {
		return best, false
	}
	for _, f := range forms {
		if !f.need(s) {
			continue
		}
		loc := f.re.FindStringSubmatchIndex(s)
		if loc == nil {
			continue
		}
		st, ok := read(f, s, loc)
		if !ok {
			continue
		}
		if !found || st.Start < best.Start || st.Start == best.Start && st.End > best.End {
			best, found = st, true
		}
		if best.Start == 0 {
			break // nothing starts earlier; the forms are ordered most specific first
		}
	}
	return best, found
}

func read(f form, s string, loc []int) (Stamp, bool) {
	st := Stamp{Start: loc[0], End: loc[1], HasYear: f.hasYear}
	get := func(name string) string {
		i := f.re.SubexpIndex(name)
		if i < 0 || loc[2*i] < 0 {
			return ""
		}
		return s[loc[2*i]:loc[2*i+1]]
	}
	num := func(name string) int { n, _ := strconv.Atoi(get(name)); return n }
	st.Year, st.Day, st.Hour, st.Minute, st.Second = num("y"), num("d"), num("h"), num("mi"), num("s")
	if m := get("mo"); m != "" {
		st.Month = time.Month(num("mo"))
	} else {
		// The month name is the first unnamed group in every form that has one.
		for i := 1; i < len(loc)/2; i++ {
			if loc[2*i] >= 0 && f.re.SubexpNames()[i] == "" {
				if mo, ok := monthIndex[strings.ToLower(s[loc[2*i]:loc[2*i]+3])]; ok {
					st.Month = mo
					break
				}
			}
		}
	}
	if ampm := strings.ToLower(strings.ReplaceAll(get("ampm"), ".", "")); ampm != "" {
		if st.Hour < 1 || st.Hour > 12 {
			return Stamp{}, false
		}
		if ampm == "pm" && st.Hour < 12 {
			st.Hour += 12
		} else if ampm == "am" && st.Hour == 12 {
			st.Hour = 0
		}
	}
	if st.Month < 1 || st.Month > 12 || st.Day < 1 || st.Day > 31 || st.Hour > 23 || st.Minute > 59 || st.Second > 60 {
		return Stamp{}, false
	}
	checkYear := st.Year
	if !st.HasYear {
		checkYear = 2000 // a leap year, so that a syslog "Feb 29" stays possible
	}
	if time.Date(checkYear, st.Month, st.Day, 0, 0, 0, 0, time.UTC).Day() != st.Day {
		return Stamp{}, false // 31 Apr or 30 Feb: not a date
	}
	z := get("z")
	if i := strings.IndexByte(z, '('); i >= 0 {
		z = z[:i] // "+0200 (CEST)": the offset beats the name
	}
	if z = strings.TrimSpace(z); z != "" {
		off, ok := ParseZone(z)
		if !ok {
			// A word after the time that is not a zone ("root", "host"):
			// the stamp is unzoned and ends before it.
			st.End = loc[2*f.re.SubexpIndex("z")]
		} else {
			st.Offset, st.Zoned = off, true
		}
	}
	return st, true
}

// Time places the stamp in time and returns it in UTC: in its own zone,
// else in the zone the report states (stated, may be nil), else in UTC. A
// syslog stamp takes its year from ref, the mail's date, or the year before
// when that would put it over a day after ref; with a zero ref, the
// current year.
func (st Stamp) Time(stated *Zone, ref time.Time) time.Time {
	y := st.Year
	if !st.HasYear {
		y = ref.Year()
		if ref.IsZero() {
			y = time.Now().UTC().Year()
		}
	}
	off := 0
	switch {
	case st.Zoned:
		off = st.Offset
	case stated != nil:
		off = stated.offsetAt(y, st)
	}
	t := time.Date(y, st.Month, st.Day, st.Hour, st.Minute, st.Second, 0, time.FixedZone("", off*60))
	if !st.HasYear && !ref.IsZero() && t.After(ref.Add(24*time.Hour)) {
		t = t.AddDate(-1, 0, 0)
	}
	return t.UTC()
}
