package notice

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
)

// Output is the parse --json object of DESIGN.md for one file.
type Output struct {
	File     string `json:"file"`
	IsNotice bool   `json:"is_notice"`
	Reason   string `json:"reason,omitempty"`
	*abuse.Notice
	// Problems lists what Validate found; absent when the notice is valid.
	Problems []Problem `json:"problems,omitempty"`
}

// NewOutput builds the parse --json object for a parsed file.
func NewOutput(file string, r Result) Output {
	o := Output{File: file, IsNotice: r.IsNotice, Reason: r.Reason, Notice: r.Notice}
	if r.Notice != nil {
		o.Problems = Validate(r.Notice)
	}
	return o
}

// WriteText prints o for a person: one labelled field a line.
func (o Output) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", o.File)
	if !o.IsNotice {
		fmt.Fprintf(&b, "  not a notice: %s\n", o.Reason)
		_, err := io.WriteString(w, b.String())
		return err
	}
	n := o.Notice
	row := func(k, v string) {
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(&b, "  %-18s %s\n", k+":", v)
	}
	row("case", n.CaseID)
	row("stage", string(n.Stage))
	row("account", n.AccountID)
	row("abuse type", string(n.Type))
	row("reported activity", n.ReportedActivity)
	row("regions", strings.Join(n.Regions, ", "))
	for _, r := range n.Resources {
		row("resource", strings.TrimSpace(fmt.Sprintf("%s %s %s", r.InstanceID, r.PublicIP, r.Region)))
	}
	row("abuse time", fmtTime(n.AbuseTime))
	for _, t := range n.Targets {
		row("target", t.String())
	}
	row("target hosts", strings.Join(n.TargetHosts, ", "))
	for _, a := range n.AWSActions {
		row("aws action", a)
	}
	row("sender", n.Sender)
	row("subject", n.Subject)
	row("date", fmtTime(n.Date))
	row("reply by", fmtTime(n.ReplyBy))
	if n.Forwarded {
		row("forwarded", "yes: the notice was forwarded by "+n.Sender)
	}
	for _, p := range o.Problems {
		row("problem", p.Field+": "+p.Message)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
