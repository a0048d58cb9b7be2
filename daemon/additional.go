package daemon

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/analyze"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/store"
)

// An additional report ("this report is for a different instance") names
// an instance the case has not blocked yet. In block-then-confirm it is
// analysed and blocked like the first notice, and the admins get a new
// summary whose token binds to the new draft: the reply must list every
// block, so a confirm of the older summary no longer counts. In
// confirm-then-block its actions join the plan waiting for the confirm,
// under a new token, the same way.

func extraKey(caseID string, messageID int64) string {
	return fmt.Sprintf("%s:extra:%d", caseID, messageID)
}

// newInstances lists the instances a follow-up names that the case's
// first notice did not.
func newInstances(c store.Case, n *abuse.Notice) []string {
	var out []string
	for _, r := range n.Resources {
		known := slices.ContainsFunc(c.Notice.Resources, func(k abuse.Resource) bool { return k.InstanceID == r.InstanceID })
		if r.InstanceID != "" && !known {
			out = append(out, r.InstanceID)
		}
	}
	return out
}

// noteAdditional records, inside the follow-up's transaction, that an
// authenticated additional report waits to be blocked.
func (d *Daemon) noteAdditional(tx *store.Tx, c store.Case, m store.Message, n *abuse.Notice) (bool, error) {
	if d.cfg.Mode == ModeReportOnly || n.Stage != abuse.StageAdditionalReport || c.State.Final() {
		return false, nil
	}
	ids := newInstances(c, n)
	if len(ids) == 0 {
		return false, nil
	}
	_, err := tx.RecordEffect(store.Effect{Key: extraKey(c.ID, m.ID), CaseID: c.ID, Kind: "extra-report",
		Detail: strconv.FormatInt(m.ID, 10) + " " + strings.Join(ids, " ")})
	return err == nil, err
}

// pendingExtra is an additional report waiting for its block.
type pendingExtra struct {
	c      store.Case
	key    string
	notice abuse.Notice
}

// pendingAdditional finds the additional reports not blocked yet. It
// looks up effects by kind, not case by case: it runs at every pass of
// the case loop, and a busy desk has many open cases.
func (d *Daemon) pendingAdditional(ctx context.Context) ([]pendingExtra, error) {
	var out []pendingExtra
	err := d.store.View(ctx, func(tx *store.Tx) error {
		extras, err := tx.EffectsOfKind("extra-report")
		if err != nil || len(extras) == 0 {
			return err
		}
		done := map[string]bool{}
		for _, kind := range []string{"blocks", "plan-extra"} {
			effects, err := tx.EffectsOfKind(kind)
			if err != nil {
				return err
			}
			for _, e := range effects {
				done[e.Key] = true
			}
		}
		for _, e := range extras {
			if done[e.Key+":blocks"] || done[e.Key+":planned"] {
				continue
			}
			c, ok, err := tx.Case(e.CaseID)
			if err != nil {
				return err
			}
			if !ok || c.State.Final() {
				continue
			}
			notices, err := tx.Notices(c.ID)
			if err != nil {
				return err
			}
			id, _, _ := strings.Cut(e.Detail, " ")
			for _, n := range notices {
				if strconv.FormatInt(n.MessageID, 10) == id {
					out = append(out, pendingExtra{c: c, key: e.Key, notice: n.Notice})
				}
			}
		}
		return nil
	})
	return out, err
}

// blockAdditional analyses and blocks one additional report, then sends
// the admins the case again with a fresh token.
func (d *Daemon) blockAdditional(ctx context.Context, p pendingExtra) error {
	n := p.notice
	if len(n.Regions) == 0 {
		// AWS writes the different instance without its region: it is the
		// case's.
		n.Regions = p.c.Notice.Regions
	}
	var an *analyze.Analysis
	if d.analyzer != nil {
		a := d.analyzer.Analyze(ctx, n)
		an = &a
	}
	sub := p.c
	sub.Notice = n
	plan, err := d.cfg.Blocker.Plan(ctx, sub, an)
	if err != nil && !remediate.IsPermanent(err) {
		return fmt.Errorf("plan the additional report: %w", err)
	}
	if d.cfg.Mode == ModeConfirmThenBlock {
		return d.proposeAdditional(ctx, p, n, plan, err)
	}
	res := remediate.Result{CaseID: p.c.ID, Actions: []remediate.ActionResult{}}
	if err != nil {
		res.Refused = []remediate.Refusal{{What: "the plan", Reason: err.Error()}}
	} else {
		res.Refused = plan.Refused
		if len(plan.Actions) > 0 {
			r, err := d.cfg.Blocker.Apply(ctx, plan)
			if err != nil && !remediate.IsPermanent(err) {
				return fmt.Errorf("apply the additional report's plan: %w", err)
			}
			r.Refused = plan.Refused
			res = r
		}
	}
	d.log.Info("additional report blocked", "case", p.c.ID, "actions", len(res.Actions), "verified", res.Verified())
	return d.store.Update(ctx, func(tx *store.Tx) error {
		if err := recordResult(tx, p.key+":blocks", p.c.ID, res); err != nil {
			return err
		}
		c, ok, err := tx.Case(p.c.ID)
		if err != nil || !ok {
			return err
		}
		problems := []string{fmt.Sprintf("an additional report names another instance (%s); it was analysed and blocked too (listed below)",
			strings.Join(newInstances(c, &n), ", "))}
		if !res.Verified() {
			problems = append(problems, "not every block of the additional report holds: see what has been done")
		}
		draft, err := d.draftReply(tx, c, c.AdminNote)
		if err != nil {
			return err
		}
		if c.State == abuse.StateAwaitingApproval {
			// The draft now lists more blocks: the approval binds to it.
			c.PlanHash = planHash(c.ID, draft)
			if err := tx.SaveCase(c); err != nil {
				return err
			}
			problems = append(problems, "confirm this summary: a confirm of an earlier one no longer counts")
		}
		return d.queueSummary(tx, c, "urgent", p.key+":summary", draft, problems, c.State)
	})
}

// proposeAdditional is confirm-then-block's answer to an additional
// report: nothing is blocked before a confirm, so while the case waits for
// one, the new instance's actions join the plan to approve, under a new
// token; a case past its approval is handed to the admins.
func (d *Daemon) proposeAdditional(ctx context.Context, p pendingExtra, n abuse.Notice, extra remediate.Plan, planErr error) error {
	return d.store.Update(ctx, func(tx *store.Tx) error {
		c, ok, err := tx.Case(p.c.ID)
		if err != nil || !ok {
			return err
		}
		ids := strings.Join(newInstances(c, &n), ", ")
		if _, err := tx.RecordEffect(store.Effect{Key: p.key + ":planned", CaseID: c.ID, Kind: "plan-extra", Detail: ids}); err != nil {
			return err
		}
		draft, err := d.draftReply(tx, c, c.AdminNote)
		if err != nil {
			return err
		}
		if c.State != abuse.StateAwaitingApproval || planErr != nil {
			why := fmt.Sprintf("an additional report names another instance (%s), and the case is %s: block it by hand (abuse-responder plan/apply with the report's mail)", ids, c.State)
			if planErr != nil {
				why = fmt.Sprintf("an additional report names another instance (%s), but no plan could be made for it: %v", ids, planErr)
			}
			return d.queueSummary(tx, c, "urgent", p.key+":summary", draft, []string{why}, c.State)
		}
		stored, err := loadPlan(tx, c.ID, c.PlanHash)
		if err != nil {
			return err
		}
		plan := remediate.Plan{}
		if stored != nil {
			plan = *stored
		}
		plan.CaseID = c.ID
		plan.Actions = append(plan.Actions, extra.Actions...)
		plan.Refused = append(plan.Refused, extra.Refused...)
		plan.Hash = remediate.HashActions(plan.Actions)
		// The approval binds to the reply and to the whole plan, the new
		// instance's actions included.
		c.PlanHash = planHash(c.ID, draft+"\x00"+plan.Hash)
		if err := storePlan(tx, c.ID, c.PlanHash, plan); err != nil {
			return err
		}
		if err := tx.SaveCase(c); err != nil {
			return err
		}
		problems := []string{
			fmt.Sprintf("an additional report names another instance (%s): its blocks joined the plan below", ids),
			"confirm this summary: a confirm of an earlier one no longer counts",
		}
		return d.queueSummary(tx, c, "urgent", p.key+":summary", draft, problems, c.State)
	})
}
