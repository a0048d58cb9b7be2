package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/analyze"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/store"
)

// Blocker is the remediation stage; cmd wires it from a *remediate.Engine
// and its backends. Plan reads the cloud and the host and changes nothing.
// Apply is idempotent per action (the engine records each action in the
// store before and after), so calling it again after a crash makes no
// second change. Both may block on the network and honour ctx.
type Blocker interface {
	Plan(ctx context.Context, c store.Case, an *analyze.Analysis) (remediate.Plan, error)
	Apply(ctx context.Context, p remediate.Plan) (remediate.Result, error)
	// Maintain checks the blocks in place against reality, applies again
	// the ones lost, and lifts the expired ones whose abuse has stopped.
	Maintain(ctx context.Context, now time.Time) (remediate.Maintenance, error)
}

// Effect keys of the blocking steps. The plan is stored before it is
// applied (block-then-confirm) or shown (confirm-then-block), so that what
// is applied after a crash or an approval is exactly what was planned or
// approved; the result is stored with the transition that records it.
func planKey(caseID, suffix string) string { return caseID + ":plan:" + suffix }
func blocksKey(caseID string) string       { return caseID + ":blocks" }

// advanceBlocking moves the cases that wait for a block: in
// block-then-confirm, a case analysed but not yet blocked; in
// confirm-then-block, a case approved whose plan is not applied yet. It
// runs in the case loop, after new mail; the AWS and nftables calls happen
// outside any store transaction.
func (d *Daemon) advanceBlocking(ctx context.Context) error {
	if d.cfg.Blocker == nil {
		return nil
	}
	var waiting []store.Case
	err := d.store.View(ctx, func(tx *store.Tx) error {
		cases, err := tx.Cases(store.CaseFilter{States: []abuse.State{abuse.StateAnalyzed, abuse.StateApproved}})
		if err != nil {
			return err
		}
		for _, c := range cases {
			_, done, err := tx.Effect(blocksKey(c.ID))
			if err != nil {
				return err
			}
			if done {
				continue
			}
			if c.State == abuse.StateApproved && d.cfg.Mode != ModeConfirmThenBlock {
				continue // the reply was queued with the approval
			}
			waiting = append(waiting, c)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cases waiting for a block: %w", err)
	}
	for _, c := range waiting {
		if !d.blockDue(c.ID) {
			continue
		}
		log := d.log.With("case", c.ID)
		err := d.block(ctx, c, log)
		if err == nil {
			delete(d.blockRetry, c.ID)
			continue
		}
		if ctx.Err() != nil || errors.Is(err, errCrash) {
			return err
		}
		// A temporary failure (AWS throttling or unreachable): the case
		// stays where it is and is tried again after a backoff.
		d.blockFailed(c.ID)
		d.metrics.blockFailures.Inc()
		log.Warn("blocking failed; will retry", "err", err)
	}
	return d.advanceAdditional(ctx)
}

// advanceAdditional blocks the additional reports waiting, with the same
// backoff as a case's first block.
func (d *Daemon) advanceAdditional(ctx context.Context) error {
	if d.cfg.Mode == ModeReportOnly {
		return nil
	}
	pending, err := d.pendingAdditional(ctx)
	if err != nil {
		return fmt.Errorf("additional reports waiting for a block: %w", err)
	}
	for _, p := range pending {
		if !d.blockDue(p.key) {
			continue
		}
		err := d.blockAdditional(ctx, p)
		if err == nil {
			delete(d.blockRetry, p.key)
			continue
		}
		if ctx.Err() != nil || errors.Is(err, errCrash) {
			return err
		}
		d.blockFailed(p.key)
		d.metrics.blockFailures.Inc()
		d.log.Warn("blocking an additional report failed; will retry", "case", p.c.ID, "err", err)
	}
	return nil
}

// block plans (or loads the stored plan), applies it and records the
// outcome with the case's next transition.
func (d *Daemon) block(ctx context.Context, c store.Case, log *slog.Logger) error {
	plan, err := d.storedPlan(ctx, c)
	if err != nil {
		return err
	}
	if plan == nil {
		an, err := d.analysisFor(ctx, c.ID)
		if err != nil {
			return err
		}
		p, err := d.cfg.Blocker.Plan(ctx, c, an)
		if err != nil {
			if remediate.IsPermanent(err) {
				return d.blockRefused(ctx, c, "the block could not be planned: "+err.Error(), nil)
			}
			return fmt.Errorf("plan: %w", err)
		}
		if err := d.store.Update(ctx, func(tx *store.Tx) error { return storePlan(tx, c.ID, "auto", p) }); err != nil {
			return err
		}
		plan = &p
	}
	if len(plan.Actions) == 0 && len(plan.Refused) > 0 {
		return d.blockRefused(ctx, c, "nothing was blocked: "+refusals(plan.Refused), nil)
	}
	res := remediate.Result{CaseID: c.ID, Actions: []remediate.ActionResult{}, Refused: plan.Refused}
	if len(plan.Actions) > 0 {
		res, err = d.cfg.Blocker.Apply(ctx, *plan)
		if err != nil && remediate.IsPermanent(err) {
			// The plan no longer matches its hash, or the store refused it:
			// retrying will not cure it.
			return d.blockRefused(ctx, c, "the block could not be applied: "+err.Error(), nil)
		}
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	}
	if err := d.crashPoint("after-apply"); err != nil {
		return err
	}
	if res.Failed() {
		for _, a := range res.Actions {
			if a.Outcome == remediate.OutcomeFailed && !a.Permanent {
				return fmt.Errorf("apply %s: %s", a.Key, a.Error)
			}
		}
		return d.blockRefused(ctx, c, "a block failed for good: "+failures(res), &res)
	}
	if applied(res) && !res.Verified() {
		// Telling AWS the abuse is blocked needs proof that it is.
		return d.blockRefused(ctx, c, "a block did not verify: "+unverified(res), &res)
	}
	log.Info("blocked", "actions", len(res.Actions), "dry_run", plan.DryRun)
	return d.store.Update(ctx, func(tx *store.Tx) error {
		if err := recordResult(tx, blocksKey(c.ID), c.ID, res); err != nil {
			return err
		}
		if applied(res) {
			if err := tx.Transition(c.ID, abuse.StateBlocked, fmt.Sprintf("%d actions applied", len(res.Actions))); err != nil {
				return err
			}
			if err := tx.Transition(c.ID, abuse.StateVerified, "every block verified"); err != nil {
				return err
			}
		}
		if c.State == abuse.StateApproved {
			// confirm-then-block: the approval came first; the reply says
			// what was applied.
			return d.queueReply(tx, c)
		}
		return d.askApproval(tx, c, "blocked; summary sent, waiting for confirm")
	})
}

// askApproval puts a case that has its block in front of the admins.
func (d *Daemon) askApproval(tx *store.Tx, c store.Case, reason string) error {
	draft, err := d.draftReply(tx, c, "")
	if err != nil {
		return err
	}
	c.PlanHash = planHash(c.ID, draft)
	if err := tx.SaveCase(c); err != nil {
		return err
	}
	if err := tx.Transition(c.ID, abuse.StateAwaitingApproval, reason); err != nil {
		return err
	}
	kind := "summary"
	if c.Urgent {
		kind = "urgent"
	}
	return d.queueSummary(tx, c, kind, c.ID+":summary", draft, nil, abuse.StateAwaitingApproval)
}

// blockRefused hands a case whose block was refused or failed for good to
// a human, with a summary that says why.
func (d *Daemon) blockRefused(ctx context.Context, c store.Case, why string, res *remediate.Result) error {
	d.log.Warn("block refused; the case needs a human", "case", c.ID, "why", why)
	if res != nil && res.Failed() {
		d.metrics.blockFailures.Inc()
	}
	return d.store.Update(ctx, func(tx *store.Tx) error {
		recorded := remediate.Result{CaseID: c.ID, Actions: []remediate.ActionResult{}}
		if res != nil {
			recorded = *res
		}
		if err := recordResult(tx, blocksKey(c.ID), c.ID, recorded); err != nil {
			return err
		}
		if err := tx.Transition(c.ID, abuse.StateNeedsHuman, why); err != nil {
			return err
		}
		draft, err := d.draftReply(tx, c, c.AdminNote)
		if err != nil {
			return err
		}
		return d.queueSummary(tx, c, "urgent", c.ID+":summary:needs-human", draft, []string{why}, abuse.StateNeedsHuman)
	})
}

func storePlan(tx *store.Tx, caseID, suffix string, p remediate.Plan) error {
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode the plan of %s: %w", caseID, err)
	}
	_, err = tx.RecordEffect(store.Effect{Key: planKey(caseID, suffix), CaseID: caseID, Kind: "plan", Detail: string(doc)})
	return err
}

// recordResult records a block result under key; blockResult gathers
// every one of a case (its first notice's and its additional reports').
func recordResult(tx *store.Tx, key, caseID string, res remediate.Result) error {
	doc, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode the block result %s: %w", key, err)
	}
	_, err = tx.RecordEffect(store.Effect{Key: key, CaseID: caseID, Kind: "blocks", Detail: string(doc)})
	return err
}

// loadPlan returns the plan stored under planKey(caseID, suffix), or nil.
func loadPlan(tx *store.Tx, caseID, suffix string) (*remediate.Plan, error) {
	e, ok, err := tx.Effect(planKey(caseID, suffix))
	if err != nil || !ok {
		return nil, err
	}
	var p remediate.Plan
	if err := json.Unmarshal([]byte(e.Detail), &p); err != nil {
		return nil, fmt.Errorf("decode the plan of %s: %w", caseID, err)
	}
	return &p, nil
}

// storedPlan returns the plan to apply for c: the one approved
// (confirm-then-block) or the one stored before a crash
// (block-then-confirm); nil when none is stored yet.
func (d *Daemon) storedPlan(ctx context.Context, c store.Case) (*remediate.Plan, error) {
	var plan *remediate.Plan
	err := d.store.View(ctx, func(tx *store.Tx) (err error) {
		suffix := "auto"
		if c.State == abuse.StateApproved {
			suffix = c.PlanHash
		}
		plan, err = loadPlan(tx, c.ID, suffix)
		return err
	})
	if err == nil && plan == nil && c.State == abuse.StateApproved {
		return nil, fmt.Errorf("case %s was approved but its plan %s is not stored", c.ID, c.PlanHash)
	}
	return plan, err
}

func (d *Daemon) analysisFor(ctx context.Context, caseID string) (*analyze.Analysis, error) {
	var an *analyze.Analysis
	err := d.store.View(ctx, func(tx *store.Tx) error {
		var err error
		an, err = analysisOf(tx, caseID)
		return err
	})
	return an, err
}

// blockResult returns the recorded outcome of a case's blocks (the first
// notice's and any additional report's, in that order), or nil.
func blockResult(tx *store.Tx, caseID string) (*remediate.Result, error) {
	effects, err := tx.Effects(caseID)
	if err != nil {
		return nil, err
	}
	var all *remediate.Result
	for _, e := range effects {
		if e.Kind != "blocks" {
			continue
		}
		var res remediate.Result
		if err := json.Unmarshal([]byte(e.Detail), &res); err != nil {
			return nil, fmt.Errorf("decode the block result %s: %w", e.Key, err)
		}
		if all == nil {
			all = &remediate.Result{CaseID: caseID, Actions: []remediate.ActionResult{}}
		}
		all.Actions = append(all.Actions, res.Actions...)
		all.Refused = append(all.Refused, res.Refused...)
	}
	return all, nil
}

func applied(res remediate.Result) bool {
	for _, a := range res.Actions {
		if a.Outcome == remediate.OutcomeApplied || a.Outcome == remediate.OutcomeAlreadyPresent {
			return true
		}
	}
	return false
}

// replyActions are the lines of actions really in place, for AWS: a dry
// run's "would block" is not an action taken.
func replyActions(res *remediate.Result) []string {
	if res == nil {
		return nil
	}
	kept := remediate.Result{CaseID: res.CaseID}
	for _, a := range res.Actions {
		if a.Outcome == remediate.OutcomeApplied || a.Outcome == remediate.OutcomeAlreadyPresent {
			kept.Actions = append(kept.Actions, a)
		}
	}
	return kept.Lines()
}

func refusals(list []remediate.Refusal) string {
	parts := make([]string, len(list))
	for i, r := range list {
		parts[i] = r.What + ": " + r.Reason
	}
	return strings.Join(parts, "; ")
}

func unverified(res remediate.Result) string {
	var parts []string
	for _, a := range res.Actions {
		if !a.Check.Holds {
			parts = append(parts, a.Key+": "+a.Check.Detail+a.Error)
		}
	}
	return strings.Join(parts, "; ")
}

func failures(res remediate.Result) string {
	var parts []string
	for _, a := range res.Actions {
		if a.Outcome == remediate.OutcomeFailed {
			parts = append(parts, a.Error)
		}
	}
	return strings.Join(parts, "; ")
}

// blockDue and blockFailed space out retries of a case whose block failed
// for a temporary reason. The map is owned by the case loop.
func (d *Daemon) blockDue(caseID string) bool {
	r, ok := d.blockRetry[caseID]
	return !ok || !d.now().Before(r.next)
}

func (d *Daemon) blockFailed(caseID string) {
	r := d.blockRetry[caseID]
	r.attempts++
	wait := d.cfg.RetryBase << min(r.attempts-1, 10)
	r.next = d.now().Add(min(wait, d.cfg.RetryMax))
	d.blockRetry[caseID] = r
}

type retryState struct {
	attempts int
	next     time.Time
}
