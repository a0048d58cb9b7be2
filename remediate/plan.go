package remediate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/abuse-responder/abuse-responder/abuse"
)

// DefaultMaxActions caps the actions of one case when Policy.MaxActions is
// 0: a notice that would take more is too broad to block unattended.
const DefaultMaxActions = 20

// Plan is what would be applied for a case: the actions in the policy's
// kind order, the targets and actions left out with why, and the hash the
// approval token binds to. An empty Actions with Refused set is a plan that
// changes nothing and says why (only protected targets, or refused whole).
type Plan struct {
	CaseID  string    `json:"case_id"`
	Actions []Action  `json:"actions"`
	Refused []Refusal `json:"refused"`
	// Hash is HashActions(Actions): a changed plan has a new hash, so an
	// approval given for the old one does not count.
	Hash   string `json:"hash"`
	DryRun bool   `json:"dry_run"`
}

// BuildPlan runs the safety rules on in.Targets, then asks each backend
// whose kinds meet in.Policy.Kinds for its actions on the targets kept, and
// returns them in the policy's kind order. It changes nothing. A notice
// whose targets are all protected gives a plan without actions, whose
// refusals say why; so does a plan above Policy.MaxActions, refused whole.
// A configured kind that no backend handles is a refusal, so the rest of
// the plan still stands; a backend's error fails the whole plan, because a
// partial plan must not be approved as if it were the whole.
func BuildPlan(ctx context.Context, in Input, backends []Backend) (Plan, error) {
	if in.CaseID == "" {
		return Plan{}, errors.New("build plan: empty case ID")
	}
	plan := Plan{CaseID: in.CaseID, DryRun: in.Policy.DryRun}
	in.Policy.Kinds = kindsFor(in.Type, in.Policy)
	kept, refused := Safe(in.Targets, in.Policy)
	plan.Refused = refused
	if len(in.Targets) > 0 && len(kept) == 0 {
		// Every target is protected: a quarantine or any other kind would
		// act on a notice that names nothing we may block.
		return finish(plan, nil), nil
	}
	in.Targets = kept

	order := make(map[Kind]int, len(in.Policy.Kinds))
	for i, k := range in.Policy.Kinds {
		if _, dup := order[k]; !dup {
			order[k] = i
		}
	}
	claimed := make(map[Kind]bool, len(order))
	var actions []Action
	for _, b := range backends {
		var kinds []Kind
		for _, k := range b.Kinds() {
			if _, want := order[k]; want && !claimed[k] {
				claimed[k] = true
				kinds = append(kinds, k)
			}
		}
		if len(kinds) == 0 {
			continue
		}
		sub := in
		sub.Policy.Kinds = kinds
		as, rs, err := b.Plan(ctx, sub)
		if err != nil {
			return Plan{}, fmt.Errorf("plan %v for case %s: %w", kinds, in.CaseID, err)
		}
		plan.Refused = append(plan.Refused, rs...)
		for _, a := range as {
			if why, ok := actionUnsafe(a, kinds, in.Policy); ok {
				plan.Refused = append(plan.Refused, Refusal{What: a.Key, Reason: why})
				continue
			}
			actions = append(actions, a)
		}
	}
	for _, k := range in.Policy.Kinds {
		if _, ok := order[k]; ok && !claimed[k] {
			claimed[k] = true // one refusal per kind, even when listed twice
			plan.Refused = append(plan.Refused, Refusal{What: string(k), Reason: fmt.Sprintf("no backend handles %s on this host", k)})
		}
	}

	actions = dedupe(actions)
	slices.SortStableFunc(actions, func(a, b Action) int { return order[a.Kind] - order[b.Kind] })

	for _, r := range plan.Refused {
		if r.Stop {
			// A protected instance halts every kind, nftables included: the
			// admins asked that nothing about it be changed automatically.
			return finish(plan, nil), nil
		}
	}
	limit := in.Policy.MaxActions
	if limit <= 0 {
		limit = DefaultMaxActions
	}
	if len(actions) > limit {
		plan.Refused = append(plan.Refused, Refusal{
			What:   "plan",
			Reason: fmt.Sprintf("%d actions exceed the limit of %d per case; nothing is applied, a human decides", len(actions), limit),
		})
		actions = nil
	}
	return finish(plan, actions), nil
}

// kindsFor is the policy's kinds for an abuse type: a miner, malware or a
// DoS bot is quarantined when an isolation group is configured, and a
// quarantine always comes with network ACL denies, because swapping
// security groups leaves tracked connections open.
func kindsFor(t abuse.Type, p Policy) []Kind {
	kinds := slices.Clone(p.Kinds)
	if p.QuarantineGroup != "" && !slices.Contains(kinds, KindQuarantine) &&
		(t == abuse.TypeCryptoMining || t == abuse.TypeMalware || t == abuse.TypeDoS) {
		kinds = append(kinds, KindQuarantine)
	}
	if slices.Contains(kinds, KindQuarantine) && !slices.Contains(kinds, KindNACL) {
		kinds = append([]Kind{KindNACL}, kinds...)
	}
	return kinds
}

// finish sets the actions and their hash, with [] rather than null in the
// JSON of `plan --json` for an empty list.
func finish(plan Plan, actions []Action) Plan {
	if actions == nil {
		actions = []Action{}
	}
	if plan.Refused == nil {
		plan.Refused = []Refusal{}
	}
	plan.Actions, plan.Hash = actions, HashActions(actions)
	return plan
}

// actionUnsafe checks what a backend proposed, so that a backend bug (an
// unasked kind, a widened or empty target) cannot get past the safety rules.
func actionUnsafe(a Action, kinds []Kind, p Policy) (string, bool) {
	if a.Key == "" {
		return "the backend proposed an action without a key", true
	}
	if !slices.Contains(kinds, a.Kind) {
		return fmt.Sprintf("kind %q was not asked of this backend", a.Kind), true
	}
	if a.Kind == KindQuarantine && !a.Target.IsValid() {
		return "", false // a quarantine cuts the instance off; it names no target
	}
	if why, ok := PrefixProtected(a.Target, p.Allowlist); ok {
		return "target " + why, true
	}
	return "", false
}

// dedupe keeps the first action of each key: the key names the change, so
// two actions with one key are one change.
func dedupe(actions []Action) []Action {
	seen := make(map[string]bool, len(actions))
	out := actions[:0]
	for _, a := range actions {
		if !seen[a.Key] {
			seen[a.Key] = true
			out = append(out, a)
		}
	}
	return out
}

// hashedAction is the part of an Action that says what changes. Reason and
// Calls are left out: rewording a reason or a call's rendering does not
// change what the approver agreed to.
type hashedAction struct {
	Key        string   `json:"key"`
	Kind       Kind     `json:"kind"`
	InstanceID string   `json:"instance_id"`
	Region     string   `json:"region"`
	Account    string   `json:"account"`
	Resource   string   `json:"resource"`
	Target     string   `json:"target"`
	Protocol   string   `json:"protocol"`
	Port       uint16   `json:"port"`
	RuleNumber int32    `json:"rule_number"`
	GroupIDs   []string `json:"group_ids"`
}

// HashActions is the hex SHA-256 of the canonical JSON of what actions
// change, in their order: keys, kinds, instances, resources, targets,
// protocols, ports, rule numbers and group IDs (sorted: a set). Reason and
// Calls are not part of it.
func HashActions(actions []Action) string {
	hs := make([]hashedAction, 0, len(actions))
	for _, a := range actions {
		groups := slices.Clone(a.GroupIDs)
		slices.Sort(groups)
		if groups == nil {
			groups = []string{}
		}
		target := ""
		if a.Target.IsValid() {
			target = a.Target.String()
		}
		hs = append(hs, hashedAction{
			Key: a.Key, Kind: a.Kind, InstanceID: a.InstanceID, Region: a.Region, Account: a.Account,
			Resource: a.Resource, Target: target, Protocol: a.Protocol, Port: a.Port,
			RuleNumber: a.RuleNumber, GroupIDs: groups,
		})
	}
	// Marshalling a slice of flat structs of strings and integers cannot fail.
	doc, _ := json.Marshal(hs)
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:])
}
