package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/abuse-responder/abuse-responder/store"
)

// Drift is a recorded block that no longer holds in reality: a reboot
// flushed the nftables ruleset, someone deleted the NACL entry or swapped
// the security groups back.
type Drift struct {
	Key    string
	CaseID string
	Detail string // the verification's detail
}

// activeStates are the states of a block that may be in place.
var activeStates = []store.BlockState{
	store.BlockApplying, store.BlockApplied, store.BlockVerified, store.BlockFailed, store.BlockRemoving,
}

// Active returns the blocks that may be in place (every state but
// removed), oldest first, for the `blocks` command.
func (e *Engine) Active(ctx context.Context) ([]store.Block, error) {
	var bs []store.Block
	err := e.Store.View(ctx, func(tx *store.Tx) (err error) {
		bs, err = tx.Blocks(store.BlockFilter{States: activeStates})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("active blocks: %w", err)
	}
	return bs, nil
}

// Unblock undoes every block of caseID that is not removed, newest first,
// so that changes stacked on one resource unwind in reverse. Each is marked
// removing before the backend's Undo and removed after it: a crash in
// between is finished by the next Unblock, since undoing what is gone is
// not an error. A block that never got past applying is undone too, with
// what the store knows of it; the backend finds its change by key.
// Unblocking again changes nothing; the Result lists those blocks as
// already removed. As with Apply, an action's failure is in the Result
// (Result.Err), and the returned error is for Unblock as a whole (the
// store, ctx).
func (e *Engine) Unblock(ctx context.Context, caseID string) (Result, error) {
	res := newResult(caseID, nil)
	var bs []store.Block
	err := e.Store.View(ctx, func(tx *store.Tx) (err error) {
		bs, err = tx.Blocks(store.BlockFilter{CaseID: caseID})
		return err
	})
	if err != nil {
		return res, fmt.Errorf("unblock case %s: %w", caseID, err)
	}
	for i := len(bs) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("unblock case %s: %w", caseID, err)
		}
		ar, storeErr := e.undo(ctx, bs[i])
		res.Actions = append(res.Actions, ar)
		if storeErr != nil {
			return res, fmt.Errorf("unblock case %s: %w", caseID, storeErr)
		}
	}
	return res, nil
}

// undo undoes one recorded block.
func (e *Engine) undo(ctx context.Context, blk store.Block) (ar ActionResult, storeErr error) {
	now := e.now()
	// Calls stay empty: Undo does not say which calls it made, and the
	// calls of the apply would mislead.
	ar = ActionResult{Key: blk.Key, CaseID: blk.CaseID, At: now, Undo: true}
	if err := json.Unmarshal(blk.Action, &ar.Action); err != nil {
		err = MarkPermanent(fmt.Errorf("undo %s: decode recorded action: %w", blk.Key, err))
		return fail(ar, err), nil
	}
	if blk.State == store.BlockRemoved {
		ar.Outcome, ar.At = OutcomeAlreadyRemoved, blk.RemovedAt
		return ar, nil
	}
	b, ok := e.backend(Kind(blk.Kind))
	if !ok {
		err := MarkPermanent(fmt.Errorf("undo %s: no backend handles %s", blk.Key, blk.Kind))
		return fail(ar, err), nil
	}
	other, err := e.sharedWith(ctx, blk, ar.Action)
	if err != nil {
		return fail(ar, err), err
	}
	if other != "" {
		// Another open case relies on the very same entry: removing it
		// would lift that case's block behind its back.
		if err := e.update(ctx, func(tx *store.Tx) error {
			return tx.SetBlockState(blk.Key, store.BlockRemoved, "kept in place: case "+other+" still needs it", now)
		}); err != nil {
			return fail(ar, err), err
		}
		ar.Outcome, ar.Error = OutcomeKeptShared, "case "+other+" still needs it"
		return ar, nil
	}
	if err := e.update(ctx, func(tx *store.Tx) error {
		return tx.SetBlockState(blk.Key, store.BlockRemoving, "", now)
	}); err != nil {
		return fail(ar, err), err
	}
	ch := Change{
		Key: blk.Key, Kind: Kind(blk.Kind), Made: true,
		Before: blk.Before, After: blk.After, Calls: blk.Calls, At: blk.AppliedAt,
	}
	if err := b.Undo(ctx, ch); err != nil {
		err = fmt.Errorf("undo %s: %w", blk.Key, err)
		storeErr := e.update(ctx, func(tx *store.Tx) error {
			return tx.SetBlockState(blk.Key, store.BlockRemoving, err.Error(), now)
		})
		return fail(ar, err), storeErr
	}
	if err := e.update(ctx, func(tx *store.Tx) error {
		return tx.SetBlockState(blk.Key, store.BlockRemoved, "", now)
	}); err != nil {
		return fail(ar, err), err
	}
	e.log().Info("block removed", "case", blk.CaseID, "key", blk.Key)
	ar.Outcome = OutcomeRemoved
	return ar, nil
}

// sharedWith names another case whose active block is the same network
// ACL entry as blk's (same ACL, target, protocol and port), or "". Only
// network ACL entries are shared this way: they carry no mark of who made
// them, so the backend finds and deletes an entry by its content. nftables
// elements carry their action key and per-case security groups their case,
// so their backends tell cases apart themselves.
func (e *Engine) sharedWith(ctx context.Context, blk store.Block, a Action) (string, error) {
	if a.Kind != KindNACL {
		return "", nil
	}
	var other string
	err := e.Store.View(ctx, func(tx *store.Tx) error {
		bs, err := tx.Blocks(store.BlockFilter{States: []store.BlockState{store.BlockApplying, store.BlockApplied, store.BlockVerified, store.BlockFailed}})
		if err != nil {
			return err
		}
		for _, o := range bs {
			if o.CaseID == blk.CaseID || o.Kind != blk.Kind {
				continue
			}
			var oa Action
			if json.Unmarshal(o.Action, &oa) != nil {
				continue
			}
			if oa.Resource == a.Resource && oa.Target == a.Target && oa.Protocol == a.Protocol && oa.Port == a.Port {
				other = o.CaseID
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("undo %s: look for other cases' blocks: %w", blk.Key, err)
	}
	return other, nil
}

// Reconcile verifies every applied or verified block against reality and
// returns those that no longer hold. It records each check but changes
// nothing else, and never applies again: the caller decides (the daemon
// tells the admins; `apply` applies again). A block whose verification
// cannot run is not drift; its error is joined into the returned error and
// the others are still checked.
func (e *Engine) Reconcile(ctx context.Context) ([]Drift, error) {
	ctx = context.WithValue(ctx, reconcilingKey{}, true)
	var bs []store.Block
	err := e.Store.View(ctx, func(tx *store.Tx) (err error) {
		bs, err = tx.Blocks(store.BlockFilter{States: []store.BlockState{store.BlockApplied, store.BlockVerified}})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	var (
		drifts []Drift
		errs   []error
	)
	for _, blk := range bs {
		if err := ctx.Err(); err != nil {
			return drifts, fmt.Errorf("reconcile: %w", err)
		}
		var a Action
		if err := json.Unmarshal(blk.Action, &a); err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: decode recorded action: %w", blk.Key, err))
			continue
		}
		b, ok := e.backend(a.Kind)
		if !ok {
			errs = append(errs, fmt.Errorf("reconcile %s: no backend handles %s", blk.Key, a.Kind))
			continue
		}
		check, err := b.Verify(ctx, a)
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: verify: %w", blk.Key, err))
			continue
		}
		if err := e.update(ctx, func(tx *store.Tx) error {
			return tx.RecordBlockCheck(blk.Key, check.Holds, check.Detail, e.now())
		}); err != nil {
			return drifts, fmt.Errorf("reconcile: %w", err)
		}
		if !check.Holds {
			drifts = append(drifts, Drift{Key: blk.Key, CaseID: blk.CaseID, Detail: check.Detail})
		}
	}
	return drifts, errors.Join(errs...)
}

// Expire handles the blocks whose ExpiresAt is at or before now. A block
// whose abuse goes on, as stillActive reports (recent attempts in flow or
// host logs), is kept and its expiry moved to now + BlockTTL; it is
// returned in extended so the caller can tell the admins. The others are
// undone as Unblock would, and returned in removed (an undo's failure is
// in removed.Err()). With BlockTTL 0 blocks never expire and Expire does
// nothing. A nil stillActive means no evidence of activity.
func (e *Engine) Expire(ctx context.Context, now time.Time, stillActive func(store.Block) bool) (removed Result, extended []store.Block, err error) {
	removed = newResult("", nil)
	if e.BlockTTL <= 0 {
		return removed, nil, nil
	}
	var bs []store.Block
	err = e.Store.View(ctx, func(tx *store.Tx) (err error) {
		bs, err = tx.Blocks(store.BlockFilter{States: []store.BlockState{store.BlockApplied, store.BlockVerified, store.BlockFailed}})
		return err
	})
	if err != nil {
		return removed, nil, fmt.Errorf("expire blocks: %w", err)
	}
	for _, blk := range bs {
		if blk.ExpiresAt.IsZero() || blk.ExpiresAt.After(now) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return removed, extended, fmt.Errorf("expire blocks: %w", err)
		}
		if stillActive != nil && stillActive(blk) {
			blk.ExpiresAt = now.Add(e.BlockTTL)
			if err := e.update(ctx, func(tx *store.Tx) error { return tx.ExtendBlock(blk.Key, blk.ExpiresAt) }); err != nil {
				return removed, extended, fmt.Errorf("expire blocks: %w", err)
			}
			extended = append(extended, blk)
			continue
		}
		ar, storeErr := e.undo(ctx, blk)
		removed.Actions = append(removed.Actions, ar)
		if storeErr != nil {
			return removed, extended, fmt.Errorf("expire blocks: %w", storeErr)
		}
	}
	return removed, extended, nil
}

type reconcilingKey struct{}

// Reconciling reports whether a Verify call comes from Reconcile, the
// periodic check, rather than from applying a block: a backend may skip
// there what is costly or noisy to repeat every few minutes (a connect
// test run on the instance through SSM) and read the state back only.
func Reconciling(ctx context.Context) bool {
	v, _ := ctx.Value(reconcilingKey{}).(bool)
	return v
}
