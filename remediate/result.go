package remediate

import (
	"errors"
	"time"
)

// Outcome is what became of one action in Engine.Apply or Engine.Unblock.
type Outcome string

// The outcomes.
const (
	OutcomeApplied        Outcome = "applied"         // the backend made the change
	OutcomeAlreadyPresent Outcome = "already-present" // it was in place already: nothing changed
	OutcomeDryRun         Outcome = "dry-run"         // nothing changed; Calls are what would be made
	OutcomeFailed         Outcome = "failed"          // see Error; the block may still be partly in place
	OutcomeRemoved        Outcome = "removed"         // Unblock undid it
	OutcomeAlreadyRemoved Outcome = "already-removed" // Unblock found it undone already
	OutcomeKeptShared     Outcome = "kept-shared"     // Unblock left it: another case's block is the same entry
)

// ActionResult is the outcome of one action.
type ActionResult struct {
	Key     string  `json:"key"`
	CaseID  string  `json:"case_id"`
	Action  Action  `json:"action"`
	Outcome Outcome `json:"outcome"`
	// Check is the verification after applying; its Key is "" when none ran.
	Check Check    `json:"check"`
	Calls []string `json:"calls"` // made, or in a dry run that would be made
	// Error is the text of what went wrong, wrapped with the action key.
	Error string `json:"error,omitempty"`
	// Permanent marks an Error that retrying will not cure (see
	// PermanentError): the daemon moves the case to needs-human.
	Permanent bool `json:"permanent,omitempty"`
	// Undo marks the result of an unblock or an expiry rather than of an
	// apply, so that a failure reads "could not remove".
	Undo bool `json:"undo,omitempty"`
	// At is when the block was first applied (for an action already
	// present, the recorded time), removed, or tried.
	At time.Time `json:"at"`
}

// Result is the outcome of applying or undoing a plan, per action in order.
type Result struct {
	CaseID  string         `json:"case_id"`
	Actions []ActionResult `json:"actions"`
	// Refused are the plan's refusals, passed on so that the caller can say
	// why something was not blocked.
	Refused []Refusal `json:"refused"`
}

// newResult starts a Result whose lists are [] rather than null in JSON.
func newResult(caseID string, refused []Refusal) Result {
	if refused == nil {
		refused = []Refusal{}
	}
	return Result{CaseID: caseID, Actions: []ActionResult{}, Refused: refused}
}

// Failed reports whether any action failed.
func (r Result) Failed() bool {
	for _, a := range r.Actions {
		if a.Outcome == OutcomeFailed {
			return true
		}
	}
	return false
}

// Err joins the errors of the failed actions, or is nil. Each keeps its
// permanence (IsPermanent), so that a caller can tell "retry later" from
// "a human must look"; it is rebuilt from Error and Permanent, so it works
// on a Result read back from JSON too.
func (r Result) Err() error {
	var errs []error
	for _, a := range r.Actions {
		if a.Outcome != OutcomeFailed {
			continue
		}
		err := errors.New(a.Error)
		if a.Permanent {
			err = MarkPermanent(err)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Verified reports whether every action is in place and its verification
// held: the condition for telling AWS the abuse is blocked.
func (r Result) Verified() bool {
	for _, a := range r.Actions {
		if (a.Outcome != OutcomeApplied && a.Outcome != OutcomeAlreadyPresent) || !a.Check.Holds {
			return false
		}
	}
	return len(r.Actions) > 0
}

// timeLayout is how the reply to AWS writes times: minutes, always UTC.
const timeLayout = "2006-01-02 15:04 UTC"

// Lines renders the result for the reply to AWS and the `apply` and
// `unblock` commands, one line per action: "2026-04-14 02:10 UTC: blocked
// egress tcp to 203.0.113.5/32 port 22 in network ACL acl-1; verified:
// entry present". Times are UTC. Refusals are not included: what the
// allowlist protects is the admins' business, not the reporter's.
func (r Result) Lines() []string {
	lines := make([]string, 0, len(r.Actions))
	for _, a := range r.Actions {
		line := a.At.UTC().Format(timeLayout) + ": "
		what := describe(a.Action, true)
		switch a.Outcome {
		case OutcomeApplied, OutcomeAlreadyPresent:
			line += "blocked " + what + verification(a)
		case OutcomeDryRun:
			line += "dry run, would block " + describe(a.Action, false)
		case OutcomeRemoved:
			line += "removed the block of " + what
		case OutcomeAlreadyRemoved:
			line += "the block of " + what + " was removed already"
		case OutcomeKeptShared:
			line += "the block of " + what + " stays in place: " + a.Error
		default:
			if a.Undo {
				line += "could not remove the block of " + what + ": " + a.Error
			} else if a.Check.Key != "" {
				// Applied, but the verification failed or did not hold.
				line += "blocked " + what + verification(a)
			} else {
				line += "could not block " + what + ": " + a.Error
			}
		}
		lines = append(lines, line)
	}
	return lines
}

func verification(a ActionResult) string {
	switch {
	case a.Check.Key == "" && a.Error != "":
		return "; not verified: " + a.Error
	case a.Check.Key == "":
		return ""
	case a.Check.Holds:
		return "; verified: " + a.Check.Detail
	default:
		return "; verification failed: " + a.Check.Detail
	}
}
