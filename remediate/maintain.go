package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/abuse-responder/abuse-responder/store"
)

// Maintenance is what one Maintain pass found and did, for the admins.
type Maintenance struct {
	Drift    []Drift       // blocks that no longer held
	Restored Result        // the drifted blocks applied again
	Expired  Result        // blocks lifted after BlockTTL with no recent attempts
	Extended []store.Block // blocks kept past BlockTTL because the abuse goes on
}

// Lines says what the pass found, one line each; none when all is well.
func (m Maintenance) Lines() []string {
	var out []string
	for _, d := range m.Drift {
		out = append(out, fmt.Sprintf("drift in case %s: %s no longer holds (%s)", d.CaseID, d.Key, d.Detail))
	}
	for _, l := range m.Restored.Lines() {
		out = append(out, "restored: "+l)
	}
	for _, l := range m.Expired.Lines() {
		out = append(out, "expired: "+l)
	}
	for _, b := range m.Extended {
		out = append(out, fmt.Sprintf("kept: %s of case %s is still hit; it now expires %s", b.Key, b.CaseID,
			b.ExpiresAt.UTC().Format(timeLayout)))
	}
	return out
}

// Maintain is the daemon's periodic pass over the blocks in place: it
// verifies each against reality (Reconcile), applies again the ones that
// no longer hold from their recorded actions (a reboot flushed nftables,
// someone deleted an ACL entry), and lifts the expired ones that
// stillActive reports quiet (Expire). Drift is never repaired silently:
// it is in the result, which the daemon mails to the admins.
func (e *Engine) Maintain(ctx context.Context, now time.Time, stillActive func(store.Block) bool) (Maintenance, error) {
	var m Maintenance
	drift, rerr := e.Reconcile(ctx)
	m.Drift = drift
	byCase := map[string][]Action{}
	var order []string
	for _, d := range drift {
		var blk store.Block
		var ok bool
		err := e.Store.View(ctx, func(tx *store.Tx) (err error) {
			blk, ok, err = tx.Block(d.Key)
			return err
		})
		if err != nil {
			return m, fmt.Errorf("maintain: %w", err)
		}
		if !ok {
			continue
		}
		var a Action
		if err := json.Unmarshal(blk.Action, &a); err != nil {
			rerr = errors.Join(rerr, fmt.Errorf("maintain %s: decode recorded action: %w", d.Key, err))
			continue
		}
		if _, seen := byCase[d.CaseID]; !seen {
			order = append(order, d.CaseID)
		}
		byCase[d.CaseID] = append(byCase[d.CaseID], a)
	}
	m.Restored = newResult("", nil)
	for _, caseID := range order {
		acts := byCase[caseID]
		res, err := e.Apply(ctx, Plan{CaseID: caseID, Actions: acts, Hash: HashActions(acts)})
		m.Restored.Actions = append(m.Restored.Actions, res.Actions...)
		if err != nil {
			return m, fmt.Errorf("maintain: restore case %s: %w", caseID, err)
		}
	}
	expired, extended, err := e.Expire(ctx, now, stillActive)
	m.Expired, m.Extended = expired, extended
	return m, errors.Join(rerr, err)
}
