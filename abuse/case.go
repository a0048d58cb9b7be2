package abuse

// State is where a case stands in its life cycle (DESIGN.md, "Case life
// cycle"): received → parsed → analyzed → blocked → verified →
// awaiting-approval → approved → replied → closed, with rejected, failed
// and needs-human as side exits.
type State string

// The case states.
const (
	StateReceived         State = "received"
	StateParsed           State = "parsed"
	StateAnalyzed         State = "analyzed"
	StateBlocked          State = "blocked"
	StateVerified         State = "verified"
	StateAwaitingApproval State = "awaiting-approval"
	StateApproved         State = "approved"
	StateReplied          State = "replied"
	StateClosed           State = "closed"
	StateRejected         State = "rejected"
	StateFailed           State = "failed"
	StateNeedsHuman       State = "needs-human"
)

// Final reports whether no further transition is expected from s.
func (s State) Final() bool {
	return s == StateClosed || s == StateRejected
}
