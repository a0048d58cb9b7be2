package remediate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/store"
)

// TestMaintain: a block lost behind the engine's back is reported as drift
// and applied again from its record; an expired block with no recent
// attempts is lifted; the lines say both.
func TestMaintain(t *testing.T) {
	et := newEngineTest(t)
	et.BlockTTL = time.Hour
	ctx := context.Background()
	plan := et.plan(t)
	if _, err := et.Apply(ctx, plan); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	lost := plan.Actions[0].Key
	et.mem.forget(lost) // a reboot flushed the ruleset

	m, err := et.Maintain(ctx, t0.Add(time.Minute), nil)
	if err != nil {
		t.Fatalf("Maintain = %v", err)
	}
	if len(m.Drift) != 1 || m.Drift[0].Key != lost {
		t.Fatalf("Maintain drift = %+v, want %s", m.Drift, lost)
	}
	if len(m.Restored.Actions) != 1 || m.Restored.Actions[0].Outcome != OutcomeApplied || !et.mem.present(lost) {
		t.Fatalf("Maintain restored = %+v, want %s applied again", m.Restored.Actions, lost)
	}
	if len(m.Expired.Actions) != 0 {
		t.Errorf("Maintain before the TTL expired %+v", m.Expired.Actions)
	}
	if lines := strings.Join(m.Lines(), "\n"); !strings.Contains(lines, "drift in case c1") || !strings.Contains(lines, "restored: ") {
		t.Errorf("Lines() = %q", lines)
	}

	// Nothing drifted: a pass says nothing.
	if m, err := et.Maintain(ctx, t0.Add(2*time.Minute), nil); err != nil || len(m.Lines()) != 0 {
		t.Errorf("Maintain with all in place = %q, %v; want nothing to say", m.Lines(), err)
	}

	// After the TTL, a quiet block is lifted; a hit one is kept.
	et.now = t0.Add(2 * time.Hour)
	keep := plan.Actions[1].Key
	m, err = et.Maintain(ctx, et.now, func(b store.Block) bool { return b.Key == keep })
	if err != nil || len(m.Expired.Actions) != 1 || m.Expired.Actions[0].Key != lost || len(m.Extended) != 1 || m.Extended[0].Key != keep {
		t.Fatalf("Maintain after the TTL = expired %+v, extended %+v, %v", m.Expired.Actions, m.Extended, err)
	}
	if et.mem.present(lost) || !et.mem.present(keep) {
		t.Errorf("after expiry: %s present %v, %s present %v; want only %s", lost, et.mem.present(lost), keep, et.mem.present(keep), keep)
	}
}

// present reports whether the backend holds the rule of key.
func (m *memBackend) present(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.rules[key]
	return ok
}

// TestReconcilingMarksTheContext: backends can tell the periodic check
// from the verification after applying.
func TestReconcilingMarksTheContext(t *testing.T) {
	et := newEngineTest(t)
	ctx := context.Background()
	if _, err := et.Apply(ctx, et.plan(t)); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	if et.mem.sawReconciling {
		t.Fatalf("Verify after Apply saw Reconciling true")
	}
	if _, err := et.Reconcile(ctx); err != nil {
		t.Fatalf("Reconcile = %v", err)
	}
	if !et.mem.sawReconciling {
		t.Errorf("Verify from Reconcile did not see Reconciling true")
	}
}

// TestUnblockKeepsASharedEntry: two cases blocking the same target in the
// same network ACL share one entry; unblocking the first leaves it for
// the second, and unblocking the second removes it.
func TestUnblockKeepsASharedEntry(t *testing.T) {
	et := newEngineTest(t)
	ctx := context.Background()
	if err := et.st.Update(ctx, func(tx *store.Tx) error {
		return tx.CreateCase(store.Case{ID: "c2", State: "analyzed"}, "test")
	}); err != nil {
		t.Fatal(err)
	}
	p1 := et.plan(t)
	in := testInput(target("203.0.113.5", 22, "tcp"), target("2001:db8::5", 0, ""))
	in.CaseID = "c2"
	p2, err := BuildPlan(ctx, in, et.Backends)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Plan{p1, p2} {
		if _, err := et.Apply(ctx, p); err != nil {
			t.Fatalf("Apply(%s) = %v", p.CaseID, err)
		}
	}
	undos := et.mem.undos
	res, err := et.Unblock(ctx, "c1")
	if err != nil || len(res.Actions) != 2 {
		t.Fatalf("Unblock(c1) = %+v, %v", res, err)
	}
	for _, a := range res.Actions {
		if a.Outcome != OutcomeKeptShared || !strings.Contains(a.Error, "case c2 still needs it") {
			t.Errorf("Unblock(c1) %s = %s %q, want kept for c2", a.Key, a.Outcome, a.Error)
		}
	}
	if et.mem.undos != undos {
		t.Errorf("Unblock(c1) called the backend's Undo %d times, want none", et.mem.undos-undos)
	}
	if !strings.Contains(strings.Join(res.Lines(), "\n"), "stays in place: case c2 still needs it") {
		t.Errorf("Lines() = %q", res.Lines())
	}
	res, err = et.Unblock(ctx, "c2")
	if err != nil || len(res.Actions) != 2 || res.Actions[0].Outcome != OutcomeRemoved || et.mem.undos != undos+2 {
		t.Errorf("Unblock(c2) = %+v, %v, %d undos; want both removed", res.Actions, err, et.mem.undos-undos)
	}
}
