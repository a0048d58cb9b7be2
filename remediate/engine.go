package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/abuse-responder/abuse-responder/store"
)

// Engine applies plans through the backends and records every action in
// the store before and after the change, so that a restart never blocks
// twice and unblock knows what to restore. It compares with reality, not
// only with the store: an action recorded as done is verified again, and
// applied again when it is gone (a reboot flushed the nftables ruleset).
//
// An Engine holds no mutable state; its methods are safe for concurrent
// use as far as the Store and the Backends are. The blocks of a case must
// belong to a case stored already (the blocks table references it).
type Engine struct {
	Store *store.Store
	// Backends apply the actions; the first one whose Kinds list an
	// action's kind applies it.
	Backends []Backend
	Now      func() time.Time // time.Now when nil
	Log      *slog.Logger     // discarded when nil
	// BlockTTL is how long a block lasts before Expire considers it:
	// ExpiresAt is AppliedAt + BlockTTL. 0 means blocks never expire.
	BlockTTL time.Duration
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e *Engine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (e *Engine) backend(k Kind) (Backend, bool) {
	for _, b := range e.Backends {
		for _, bk := range b.Kinds() {
			if bk == k {
				return b, true
			}
		}
	}
	return nil, false
}

// Apply applies plan's actions in order and verifies each. An action the
// store records as applied or verified is verified against reality, and
// applied again only when it no longer holds. Otherwise the intent
// (applying) is committed before the backend is called and the outcome
// (applied, with the state before and after) after it, then the
// verification (verified or failed); a crash in between is resolved by the
// next Apply through the backend's idempotency.
//
// One action's failure does not stop the others: a partial block is better
// than none while the abuse goes on. An action's failure is in its
// ActionResult (Outcome failed, Error wrapped with its key, Permanent), and
// Result.Err joins them. The returned error is for Apply as a whole: the
// store failed (which stops Apply at once, because a change it cannot
// record must not be made), ctx ended, or the plan's actions no longer
// match its hash (permanent: it needs a new approval).
//
// With plan.DryRun, the backends are called with dryRun and nothing is
// written anywhere, the store included (Store may be nil); the Result
// carries the calls that would be made.
func (e *Engine) Apply(ctx context.Context, plan Plan) (Result, error) {
	res := newResult(plan.CaseID, plan.Refused)
	if plan.Hash != "" && plan.Hash != HashActions(plan.Actions) {
		return res, MarkPermanent(fmt.Errorf("apply plan of case %s: its actions do not match its hash %s: the plan changed after it was made", plan.CaseID, plan.Hash))
	}
	if plan.CaseID == "" && len(plan.Actions) > 0 {
		return res, MarkPermanent(errors.New("apply plan: empty case ID"))
	}
	for _, a := range plan.Actions {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("apply plan of case %s: %w", plan.CaseID, err)
		}
		ar, storeErr := e.applyOne(ctx, plan, a)
		res.Actions = append(res.Actions, ar)
		if storeErr != nil {
			return res, fmt.Errorf("apply plan of case %s: %w", plan.CaseID, storeErr)
		}
	}
	return res, nil
}

// applyOne applies one action. Its failure is in the ActionResult;
// storeErr means the store could not record it, which stops Apply.
func (e *Engine) applyOne(ctx context.Context, plan Plan, a Action) (ar ActionResult, storeErr error) {
	now := e.now()
	ar = ActionResult{Key: a.Key, CaseID: plan.CaseID, Action: a, At: now}
	b, err := e.checkAction(a)
	if err != nil {
		return fail(ar, err), nil
	}
	if plan.DryRun {
		ch, err := b.Apply(ctx, a, true)
		if err != nil {
			err = fmt.Errorf("dry-run apply %s: %w", a.Key, err)
			return fail(ar, err), nil
		}
		ar.Outcome, ar.Calls = OutcomeDryRun, ch.Calls
		if ar.Calls == nil {
			ar.Calls = a.Calls
		}
		return ar, nil
	}

	var (
		prev  store.Block
		found bool
	)
	if err := e.Store.View(ctx, func(tx *store.Tx) (err error) {
		prev, found, err = tx.Block(a.Key)
		return err
	}); err != nil {
		return fail(ar, err), err
	}
	if found && (prev.State == store.BlockApplied || prev.State == store.BlockVerified) {
		check, err := b.Verify(ctx, a)
		if err != nil {
			err = fmt.Errorf("verify %s: %w", a.Key, err)
			storeErr := e.update(ctx, func(tx *store.Tx) error {
				return tx.SetBlockState(a.Key, prev.State, err.Error(), now)
			})
			return fail(ar, err), storeErr
		}
		if check.Holds {
			ar.Outcome, ar.Check, ar.At = OutcomeAlreadyPresent, check, prev.AppliedAt
			storeErr := e.update(ctx, func(tx *store.Tx) error {
				if err := tx.RecordBlockCheck(a.Key, true, check.Detail, now); err != nil {
					return err
				}
				return tx.SetBlockState(a.Key, store.BlockVerified, "", now)
			})
			return ar, storeErr
		}
		e.log().Warn("recorded block no longer holds; applying it again",
			"case", plan.CaseID, "key", a.Key, "detail", check.Detail)
		if err := e.update(ctx, func(tx *store.Tx) error {
			return tx.RecordBlockCheck(a.Key, false, check.Detail, now)
		}); err != nil {
			return fail(ar, err), err
		}
	}
	return e.applyChange(ctx, plan, a, b, prev, found)
}

// checkAction finds the backend of a and refuses what must never be
// applied, whatever the plan says: a plan may come from a file or an older
// process, so the built-in protected ranges are checked again here.
func (e *Engine) checkAction(a Action) (Backend, error) {
	if a.Key == "" {
		return nil, MarkPermanent(errors.New("apply: an action without a key"))
	}
	b, ok := e.backend(a.Kind)
	if !ok {
		return nil, MarkPermanent(fmt.Errorf("apply %s: no backend handles %s", a.Key, a.Kind))
	}
	if a.Kind != KindQuarantine || a.Target.IsValid() {
		if why, bad := PrefixProtected(a.Target, nil); bad {
			return nil, MarkPermanent(fmt.Errorf("apply %s: refused: target %s", a.Key, why))
		}
	}
	return b, nil
}

// applyChange records the intent, calls the backend, records the outcome
// and verifies it.
func (e *Engine) applyChange(ctx context.Context, plan Plan, a Action, b Backend, prev store.Block, found bool) (ar ActionResult, storeErr error) {
	now := e.now()
	ar = ActionResult{Key: a.Key, CaseID: plan.CaseID, Action: a, At: now}
	actionJSON, err := json.Marshal(a)
	if err != nil {
		err = MarkPermanent(fmt.Errorf("apply %s: encode action: %w", a.Key, err))
		return fail(ar, err), nil
	}
	// A block that was removed is a new block; one left applying or failed
	// keeps what an earlier attempt learnt (its first application time,
	// expiry and state before).
	rec := store.Block{}
	if found && prev.State != store.BlockRemoving && prev.State != store.BlockRemoved {
		rec = prev
	}
	rec.Key, rec.CaseID, rec.Kind, rec.Action = a.Key, plan.CaseID, string(a.Kind), actionJSON
	rec.State, rec.LastError, rec.RemovedAt = store.BlockApplying, "", time.Time{}
	if err := e.update(ctx, func(tx *store.Tx) error { return tx.PutBlock(rec) }); err != nil {
		return fail(ar, err), err
	}

	ch, err := b.Apply(ctx, a, false)
	if err != nil {
		// Whether the change was made is unknown: the block stays applying,
		// and the next Apply asks the backend again.
		err = fmt.Errorf("apply %s: %w", a.Key, err)
		storeErr := e.update(ctx, func(tx *store.Tx) error {
			return tx.SetBlockState(a.Key, store.BlockApplying, err.Error(), now)
		})
		return fail(ar, err), storeErr
	}
	// The state before: fresh from the backend when it made the change;
	// when it found the change there already, what this program recorded
	// when it made it, if it got that far, else what the backend can tell.
	if len(ch.Before) > 0 && (ch.Made || len(rec.Before) == 0) {
		rec.Before = ch.Before
	}
	if len(ch.After) > 0 {
		rec.After = ch.After
	}
	rec.State, rec.Calls = store.BlockApplied, ch.Calls
	if rec.AppliedAt.IsZero() {
		rec.AppliedAt = now
	}
	if rec.ExpiresAt.IsZero() && e.BlockTTL > 0 {
		rec.ExpiresAt = rec.AppliedAt.Add(e.BlockTTL)
	}
	if err := e.update(ctx, func(tx *store.Tx) error { return tx.PutBlock(rec) }); err != nil {
		return fail(ar, err), err
	}
	ar.Outcome, ar.Calls, ar.At = OutcomeAlreadyPresent, ch.Calls, rec.AppliedAt
	if ch.Made {
		ar.Outcome = OutcomeApplied
		e.log().Info("block applied", "case", plan.CaseID, "key", a.Key, "calls", len(ch.Calls))
	}
	return e.verifyNew(ctx, ar, b)
}

// verifyNew verifies a block just applied and records verified or failed.
func (e *Engine) verifyNew(ctx context.Context, ar ActionResult, b Backend) (_ ActionResult, storeErr error) {
	now := e.now()
	check, err := b.Verify(ctx, ar.Action)
	if err != nil {
		err = fmt.Errorf("verify %s: %w", ar.Key, err)
		storeErr := e.update(ctx, func(tx *store.Tx) error {
			return tx.SetBlockState(ar.Key, store.BlockFailed, err.Error(), now)
		})
		return fail(ar, err), storeErr
	}
	ar.Check = check
	st, errText := store.BlockVerified, ""
	if !check.Holds {
		err := fmt.Errorf("verify %s: the block does not hold: %s", ar.Key, check.Detail)
		st, errText = store.BlockFailed, err.Error()
		ar = fail(ar, err)
	}
	storeErr = e.update(ctx, func(tx *store.Tx) error {
		if err := tx.RecordBlockCheck(ar.Key, check.Holds, check.Detail, now); err != nil {
			return err
		}
		return tx.SetBlockState(ar.Key, st, errText, now)
	})
	return ar, storeErr
}

// update runs fn in a store transaction, wrapped so that the caller can
// tell a store failure from a backend one.
func (e *Engine) update(ctx context.Context, fn func(*store.Tx) error) error {
	if err := e.Store.Update(ctx, fn); err != nil {
		return fmt.Errorf("record block: %w", err)
	}
	return nil
}

// fail marks ar failed with err.
func fail(ar ActionResult, err error) ActionResult {
	ar.Outcome, ar.Error, ar.Permanent = OutcomeFailed, err.Error(), IsPermanent(err)
	return ar
}
