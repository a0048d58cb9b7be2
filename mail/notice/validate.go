package notice

import (
	"regexp"

	"github.com/abuse-responder/abuse-responder/abuse"
)

// Problem is one field of a parsed notice that fails validation.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

var (
	reValidCaseID   = regexp.MustCompile(`^(?:\d{8,13}(?:-\d+)?|[A-Z0-9]{6,})$`)
	reValidAccount  = regexp.MustCompile(`^\d{12}$`)
	reValidInstance = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)
	reValidRegion   = regexp.MustCompile(`^` + regionPattern + `$`)
)

// Validate checks the fields a case is built on. A notice with problems is
// still kept and shown to the admins; it is never acted on automatically.
func Validate(n *abuse.Notice) []Problem {
	var ps []Problem
	add := func(field, msg string) { ps = append(ps, Problem{field, msg}) }
	switch {
	case n.CaseID == "":
		add("case_id", "missing: no [case number] in the subject")
	case !reValidCaseID.MatchString(n.CaseID):
		add("case_id", "malformed: "+n.CaseID)
	}
	if n.AccountID != "" && !reValidAccount.MatchString(n.AccountID) {
		add("account_id", "not a 12-digit AWS account ID: "+n.AccountID)
	}
	for _, r := range n.Resources {
		if r.InstanceID == "" && r.PublicIP != "" {
			// AWS named the resource by its address alone.
		} else if !reValidInstance.MatchString(r.InstanceID) {
			add("resources", "malformed instance ID: "+r.InstanceID)
		}
		if r.Region != "" && !reValidRegion.MatchString(r.Region) {
			add("resources", "malformed region: "+r.Region)
		}
	}
	if n.Stage == abuse.StageNotice && len(n.Resources) == 0 && len(n.Regions) == 0 {
		add("resources", "the notice names no instance and no region")
	}
	if n.Date == nil {
		add("date", "no valid Date header: the reply deadline is unknown")
	}
	return ps
}
