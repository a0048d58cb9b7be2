package logtime

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

var reOffset = regexp.MustCompile(`^(?:UTC|GMT)?[ \t]*([+-])(\d{1,2})(?::?(\d{2}))?$`)

// ParseZone reads a zone written next to a time: "+0200", "UTC+9",
// "UTC-05:00", "Z" or a known abbreviation in capitals ("CEST"). It returns
// the offset in minutes east of UTC.
func ParseZone(z string) (int, bool) {
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

// Zone is a zone a report declares for its lines, such as "(time zone is
// UTC)" or "Note: Local timezone is +0200 (CEST)". Some reports give a
// winter and a summer offset ("UTC+1/MET or UTC+2/MEST"); then the EU
// summer-time rule picks one for each stamp.
type Zone struct {
	winter, summer int // minutes east of UTC
	seasonal       bool
}

// Offset returns the zone's offset in minutes east of UTC at t; for a
// seasonal zone, t is read as winter time to decide the season.
func (z *Zone) Offset(t time.Time) int {
	if !z.seasonal {
		return z.winter
	}
	utc := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC).Add(-time.Duration(z.winter) * time.Minute)
	if euSummerTime(utc) {
		return z.summer
	}
	return z.winter
}

func (z *Zone) offsetAt(year int, st Stamp) int {
	return z.Offset(time.Date(year, st.Month, st.Day, st.Hour, st.Minute, st.Second, 0, time.UTC))
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

// StatedZone finds the first zone statement in a report's text, or nil.
// A numeric offset beats an abbreviation in the same statement; two
// offsets, the smaller first, make a seasonal zone. The statement may come
// before or after the lines it governs, so callers read the whole text
// first. Linear in len(text).
func StatedZone(text string) *Zone {
	for rest := text; rest != ""; {
		line := rest
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if !mayStateZone(line) {
			continue
		}
		if z := zoneOfLine(line); z != nil {
			return z
		}
	}
	return nil
}

// mayStateZone is the cheap test before the regexp: every statement holds
// "time", "utc" or "gmt" in some case.
func mayStateZone(line string) bool {
	for i := 0; i+2 < len(line); i++ {
		switch line[i] | 0x20 {
		case 't':
			if i+3 < len(line) && line[i+1]|0x20 == 'i' && line[i+2]|0x20 == 'm' && line[i+3]|0x20 == 'e' {
				return true
			}
		case 'u':
			if line[i+1]|0x20 == 't' && line[i+2]|0x20 == 'c' {
				return true
			}
		case 'g':
			if line[i+1]|0x20 == 'm' && line[i+2]|0x20 == 't' {
				return true
			}
		}
	}
	return false
}

func zoneOfLine(line string) *Zone {
	loc := reZoneStatement.FindStringIndex(line)
	if loc == nil {
		return nil
	}
	// Look around the statement, not at timestamps elsewhere on the line.
	from := max(0, loc[0]-12)
	seg := line[from:min(len(line), loc[1]+60)]
	var offs []int
	for _, o := range reZoneOffsetAny.FindAllString(seg, -1) {
		if off, ok := ParseZone(strings.ReplaceAll(o, " ", "")); ok {
			offs = append(offs, off)
		}
	}
	if len(offs) >= 2 && offs[1] > offs[0] {
		return &Zone{winter: offs[0], summer: offs[1], seasonal: true}
	}
	if len(offs) >= 1 {
		return &Zone{winter: offs[0]}
	}
	for _, w := range reZoneWord.FindAllString(seg, -1) {
		if off, ok := zoneAbbrev[w]; ok {
			return &Zone{winter: off}
		}
	}
	return nil
}
