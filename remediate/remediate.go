// Package remediate blocks the abuse precisely, proves that the block
// holds, and undoes it exactly.
//
// A Plan is a list of Actions, each with its reason and a stable key,
// built from the notice's targets and the implicated instances by the
// Backends (remediate/awsec2 for network ACLs, security groups and
// quarantine; remediate/nft for the host's nftables), after the safety
// rules have removed every target that must never be blocked. Applying a
// plan records each action in the store before and after the change, with
// what existed before, so that a restart never blocks twice and unblock
// restores the original state.
//
// remediate does not import analyze or mail: it takes plain values.
package remediate

import (
	"context"
	"encoding/json"
	"net/netip"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
)

// Kind is a kind of block.
type Kind string

// The kinds of block, one per config action.
const (
	KindNACL          Kind = "nacl"           // an egress deny entry in the subnet's network ACL
	KindSecurityGroup Kind = "security-group" // a per-case group without the abused egress, swapped in
	KindQuarantine    Kind = "quarantine"     // every group swapped for the isolation group
	KindNftables      Kind = "nftables"       // a reject rule in the host's inet abuse_responder table
)

// InstanceRef names an implicated instance.
type InstanceRef struct {
	ID      string `json:"id"`
	Region  string `json:"region"`
	Account string `json:"account"`
}

// Policy is what may be blocked, and how; cmd maps [remediate] onto it.
type Policy struct {
	Kinds      []Kind         // the configured actions, in order
	Allowlist  []netip.Prefix // never blocked, on top of the built-in protected ranges
	ProtectTag string         // an instance with this tag key goes to needs-human
	RuleBand   [2]int32       // first and last NACL rule number we may use, inclusive
	// NACLQuota is the entries per ACL, direction and address family
	// (AWS's default is 20).
	NACLQuota int
	// MaxActions caps the actions of one case: a plan above it is refused.
	MaxActions      int
	QuarantineGroup string        // security group ID for KindQuarantine
	BlockTTL        time.Duration // nftables set elements time out after it
	DryRun          bool
	// Snapshots takes a forensic EBS snapshot of each volume attached to
	// the instance before a quarantine swaps its groups, tagged with the
	// case and the instance. They are evidence, and evidence outlives the
	// block: unblock never deletes them.
	Snapshots bool
}

// Input is what a plan is built from.
type Input struct {
	CaseID    string
	Type      abuse.Type
	Targets   []abuse.Target // already checked by the safety rules when a backend sees them
	Instances []InstanceRef
	Policy    Policy
}

// Action is one change. Its Key is stable across runs and processes
// ("<case>:nacl:<acl-id>:<cidr>:<proto>:<port>") and is how the store
// knows it was done. Backends fill the fields of their kind.
type Action struct {
	Key    string `json:"key"`
	Kind   Kind   `json:"kind"`
	Reason string `json:"reason"`

	InstanceID string `json:"instance_id,omitempty"`
	Region     string `json:"region,omitempty"`
	Account    string `json:"account,omitempty"`
	// Resource is what the action changes: the ACL ID, the instance ID
	// (group swaps), or "host" for nftables.
	Resource string `json:"resource"`

	Target   netip.Prefix `json:"target"`   // never 0.0.0.0/0 or ::/0
	Protocol string       `json:"protocol"` // "tcp", "udp" or "" for all
	Port     uint16       `json:"port"`     // 0 for every port

	RuleNumber int32    `json:"rule_number,omitempty"` // KindNACL
	GroupIDs   []string `json:"group_ids,omitempty"`   // KindSecurityGroup, KindQuarantine: the groups to swap in ("" = created by Apply)

	// Calls are the exact API calls or nft rules Apply would make, for
	// `plan` and dry runs.
	Calls []string `json:"calls"`
}

// Refusal is a target or an action left out of a plan, with why.
type Refusal struct {
	What   string `json:"what"` // a target ("203.0.113.5 port 22/tcp") or an action key
	Reason string `json:"reason"`
	// Stop means the whole case must go to a human and nothing be applied
	// (an instance carrying the protect tag), not just this item left out.
	Stop bool `json:"stop,omitempty"`
}

// Change is what Apply did: the state before (for Undo) and after, as
// JSON that the backend that made it understands.
type Change struct {
	Key  string `json:"key"`
	Kind Kind   `json:"kind"`
	// Made is false when the change was there already (an idempotent
	// re-run) or in a dry run.
	Made   bool            `json:"made"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	// Calls are the calls made (or, in a dry run, that would be).
	Calls []string  `json:"calls"`
	At    time.Time `json:"at"`
}

// Check is the result of verifying one action.
type Check struct {
	Key    string `json:"key"`
	Holds  bool   `json:"holds"`
	Detail string `json:"detail"` // "entry 41 deny tcp 203.0.113.5/32 port 22 present", "connect to 203.0.113.5:22 refused in 0 ms"
}

// Backend blocks one family of kinds. Implementations are safe for
// concurrent use; every method may block on the network and honours ctx.
type Backend interface {
	// Kinds lists the kinds this backend plans and applies.
	Kinds() []Kind
	// Plan proposes the actions of its kinds for in, reading the current
	// state (Describe* calls, the nft ruleset) and changing nothing. An
	// action it cannot place (the quota is full, no free rule number
	// before the first matching allow) is a Refusal, not an error.
	Plan(ctx context.Context, in Input) ([]Action, []Refusal, error)
	// Apply makes a's change unless it is there already, and returns the
	// state before and after. With dryRun it changes nothing (EC2
	// DryRun=true where it exists) and returns the calls it would make.
	// When the change is there already (Made false, as after a crash
	// between the backend call and the engine's record of it), Before is
	// still what Undo must restore: the state without this program's
	// change, as far as the backend can tell (a change found by its key is
	// ours), never the state that includes it.
	Apply(ctx context.Context, a Action, dryRun bool) (Change, error)
	// Verify reads back whether a's change is in place and holds.
	Verify(ctx context.Context, a Action) (Check, error)
	// Undo reverts c exactly, restoring what c.Before recorded. Undoing
	// what is already gone is not an error. c.Before and c.After are empty
	// when the process stopped between calling Apply and recording its
	// Change: Undo then finds its change by c.Key (a tag, an nft comment).
	Undo(ctx context.Context, c Change) error
}
