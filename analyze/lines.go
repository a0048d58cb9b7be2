package analyze

import (
	"fmt"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/analyze/cloud"
)

// maxHostLines bounds the host findings listed in a summary; the full list
// stays in the store and in `analyze --json`.
const maxHostLines = 15

// maxReportLines bounds the summaries of the report's lines: a port scan
// of a thousand ports is one story, not a thousand lines.
const maxReportLines = 10

// SummaryLines is the analysis for the admins: the verdict, the cause with
// its support, what the report's lines say, the resources, the flow logs
// and the host findings.
func (a Analysis) SummaryLines() []string {
	out := []string{fmt.Sprintf("verdict: %s (%s)", a.Verdict, a.Why)}
	out = append(out, "cause: "+a.Cause.Text)
	for _, s := range a.Cause.Support {
		out = append(out, "  supported by "+s)
	}
	for i, s := range a.Evidence.Summaries {
		if i == maxReportLines {
			out = append(out, fmt.Sprintf("the report shows … and %d more kinds of lines (abuse-responder analyze --json)", len(a.Evidence.Summaries)-i))
			break
		}
		out = append(out, "the report shows "+s.Text)
	}
	for _, r := range a.Resources {
		out = append(out, instanceLine(r))
	}
	for _, t := range a.Telemetry.FlowLogs {
		out = append(out, flowLines(t)...)
	}
	switch {
	case !a.Host.Collected:
		out = append(out, "host evidence: "+a.Host.Note)
	case len(a.Host.Findings) == 0:
		out = append(out, "host evidence: nothing found")
	}
	for i, f := range a.Host.Findings {
		if i == maxHostLines {
			out = append(out, fmt.Sprintf("host: … and %d more findings (abuse-responder cases show %s)", len(a.Host.Findings)-i, a.CaseID))
			break
		}
		where := f.Path
		if f.Line > 0 {
			where = fmt.Sprintf("%s:%d", f.Path, f.Line)
		}
		out = append(out, fmt.Sprintf("host %s: %s: %s", f.Kind, where, f.Reason))
	}
	for _, p := range a.Problems {
		out = append(out, "not available: "+p)
	}
	for _, p := range a.Host.Problems {
		out = append(out, "host collection: "+p)
	}
	return out
}

// ReplyLines is what the reply to AWS says about the analysis: the
// verdict and the cause, without our internal paths' context.
func (a Analysis) ReplyLines() []string {
	var out []string
	switch a.Verdict {
	case Confirmed:
		out = append(out, "Our own records confirm the reported activity: "+a.Why+".")
	case NotReproduced:
		out = append(out, "We could not reproduce the reported activity: "+a.Why+".")
	case LikelySpoofed:
		out = append(out, "The report appears to rest on spoofed data: "+a.Why+".")
	default:
		out = append(out, "Our records neither confirm nor rule out the reported activity.")
	}
	if a.Cause.Kind != "unknown" && a.Cause.Text != "" {
		out = append(out, "Likely cause: "+a.Cause.Text+".")
	}
	return out
}

func instanceLine(r cloud.Instance) string {
	if !r.Found {
		return fmt.Sprintf("instance %s: not found (%s)", r.Query, r.Note)
	}
	var parts []string
	parts = append(parts, r.State)
	if r.VPCID != "" {
		parts = append(parts, r.VPCID, r.SubnetID)
	}
	if r.NetworkACL != nil {
		parts = append(parts, "network ACL "+r.NetworkACL.ID)
	}
	var groups []string
	for _, g := range r.SecurityGroups {
		groups = append(groups, g.ID)
	}
	if len(groups) > 0 {
		parts = append(parts, "groups "+strings.Join(groups, ", "))
	}
	if len(r.PublicIPs) > 0 {
		parts = append(parts, "public "+strings.Join(r.PublicIPs, ", "))
	}
	if r.SSMManaged != nil && *r.SSMManaged {
		parts = append(parts, "managed by SSM")
	}
	if name := r.Tags["Name"]; name != "" {
		parts = append(parts, "Name="+name)
	}
	line := fmt.Sprintf("instance %s in %s: %s", r.InstanceID, r.Region, strings.Join(parts, ", "))
	if r.Note != "" {
		line += " (" + r.Note + ")"
	}
	return line
}

func flowLines(t cloud.Telemetry) []string {
	if !t.Covered {
		note := "no records for the instance's interfaces in the window"
		if t.Note != "" {
			note = t.Note
		}
		return []string{fmt.Sprintf("flow logs %s: %s", t.LogGroup, note)}
	}
	if len(t.Flows) == 0 {
		return []string{fmt.Sprintf("flow logs %s: %d records in the window, none to the targets", t.LogGroup, t.Records)}
	}
	var out []string
	for _, f := range t.Flows {
		line := fmt.Sprintf("flow logs: %s port %d/%s: %d accepted, %d rejected, %d bytes", f.Target, f.Port, f.Protocol, f.Accepted, f.Rejected, f.Bytes)
		if f.First != nil && f.Last != nil {
			line += ", " + f.First.UTC().Format(time.DateTime) + " – " + f.Last.UTC().Format(time.DateTime) + " UTC"
		}
		if f.Ongoing {
			line += ", still going on"
		}
		out = append(out, line)
	}
	return out
}
