package notice

import (
	"regexp"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/internal/logtime"
)

var reAbuseTimeLabel = regexp.MustCompile(`(?im)^[ \t*>-]*Abuse Time\s*:[ \t]*(.*\S)?`)

// abuseTimeOf reads the Abuse Time label, else the first timestamp in the
// reporter's text in the zone the report states (FORMATS.md §10).
func abuseTimeOf(aws, report doc, ref time.Time) *time.Time {
	for _, m := range reAbuseTimeLabel.FindAllStringSubmatch(aws.lines("abuse time"), -1) {
		if st, ok := logtime.Find(m[1]); ok {
			return timePtr(st.Time(nil, ref))
		}
	}
	var stated *logtime.Zone
	if report.has("time", "utc", "gmt") {
		stated = logtime.StatedZone(report.s)
	}
	for _, line := range strings.Split(report.s, "\n") {
		if st, ok := logtime.Find(line); ok {
			return timePtr(st.Time(stated, ref))
		}
	}
	return nil
}
