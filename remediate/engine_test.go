package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/store"
)

var t0 = time.Date(2026, 4, 14, 2, 10, 0, 0, time.UTC)

// engineTest is an Engine on a real SQLite store in t.TempDir(), with case
// c1 stored, a settable clock and the in-memory backend.
type engineTest struct {
	*Engine
	st  *store.Store
	mem *memBackend
	now time.Time
}

func newEngineTest(t *testing.T) *engineTest {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatalf("store.Open = %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Update(ctx, func(tx *store.Tx) error {
		return tx.CreateCase(store.Case{ID: "c1", State: abuse.StateAnalyzed}, "test")
	}); err != nil {
		t.Fatalf("CreateCase = %v", err)
	}
	et := &engineTest{st: st, mem: newMem(KindNACL), now: t0}
	et.Engine = &Engine{
		Store: st, Backends: []Backend{et.mem}, BlockTTL: 168 * time.Hour,
		Now: func() time.Time { return et.now },
		Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
	return et
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// plan builds the plan of c1 for two targets with the engine's backends.
func (et *engineTest) plan(t *testing.T) Plan {
	t.Helper()
	in := testInput(target("203.0.113.5", 22, "tcp"), target("2001:db8::5", 0, ""))
	p, err := BuildPlan(context.Background(), in, et.Backends)
	if err != nil || len(p.Actions) != 2 {
		t.Fatalf("BuildPlan = %d actions, %v, want 2", len(p.Actions), err)
	}
	return p
}

func (et *engineTest) block(t *testing.T, key string) store.Block {
	t.Helper()
	var b store.Block
	err := et.st.View(context.Background(), func(tx *store.Tx) (err error) {
		var ok bool
		b, ok, err = tx.Block(key)
		if err == nil && !ok {
			t.Fatalf("Block(%s): absent", key)
		}
		return err
	})
	if err != nil {
		t.Fatalf("Block(%s) = %v", key, err)
	}
	return b
}

func (et *engineTest) blocks(t *testing.T) []store.Block {
	t.Helper()
	var bs []store.Block
	if err := et.st.View(context.Background(), func(tx *store.Tx) (err error) {
		bs, err = tx.Blocks(store.BlockFilter{})
		return err
	}); err != nil {
		t.Fatalf("Blocks = %v", err)
	}
	return bs
}

func outcomes(r Result) []Outcome {
	var out []Outcome
	for _, a := range r.Actions {
		out = append(out, a.Outcome)
	}
	return out
}

func TestApplyRecordsThenIsIdempotent(t *testing.T) {
	et := newEngineTest(t)
	ctx := context.Background()
	plan := et.plan(t)

	// The intent is in the store before the backend is called, the outcome
	// before it is verified.
	et.mem.onApply = func(a Action) {
		if b := et.block(t, a.Key); b.State != store.BlockApplying {
			t.Errorf("store while backend.Apply(%s) runs: state %s, want applying", a.Key, b.State)
		}
	}
	et.mem.onVerify = func(a Action) {
		if b := et.block(t, a.Key); b.State != store.BlockApplied || len(b.Before) == 0 || len(b.After) == 0 || len(b.Calls) == 0 {
			t.Errorf("store while backend.Verify(%s) runs: %+v, want applied with before, after and calls", a.Key, b)
		}
	}
	res, err := et.Apply(ctx, plan)
	if err != nil || !reflect.DeepEqual(outcomes(res), []Outcome{OutcomeApplied, OutcomeApplied}) || !res.Verified() {
		t.Fatalf("Apply = %v, %+v, want both applied and verified", err, res)
	}
	et.mem.onApply, et.mem.onVerify = nil, nil
	for _, a := range plan.Actions {
		b := et.block(t, a.Key)
		if b.State != store.BlockVerified || b.CaseID != "c1" || b.Kind != "nacl" ||
			string(b.Before) != `{"present":false}` || !strings.Contains(string(b.After), `"present":true`) ||
			!b.AppliedAt.Equal(t0) || !b.VerifiedAt.Equal(t0) || !b.ExpiresAt.Equal(t0.Add(168*time.Hour)) ||
			!strings.HasSuffix(b.Check, "present") || b.LastError != "" {
			t.Errorf("after Apply, Block(%s) = %+v", a.Key, b)
		}
	}
	want := []string{
		"2026-04-14 02:10 UTC: blocked egress tcp to 203.0.113.5/32 port 22 in network ACL acl-1; verified: rule deny tcp 203.0.113.5/32 port 22 present",
		"2026-04-14 02:10 UTC: blocked all egress to 2001:db8::5/128 in network ACL acl-1; verified: rule deny  2001:db8::5/128 port 0 present",
	}
	if got := res.Lines(); !reflect.DeepEqual(got, want) {
		t.Errorf("Result.Lines() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Again, later: verified against the backend, nothing changed.
	et.now = t0.Add(time.Hour)
	res, err = et.Apply(ctx, plan)
	if err != nil || !reflect.DeepEqual(outcomes(res), []Outcome{OutcomeAlreadyPresent, OutcomeAlreadyPresent}) || !res.Verified() {
		t.Fatalf("second Apply = %v, %+v, want both already present", err, res)
	}
	if et.mem.made != 2 || et.mem.applies != 2 {
		t.Errorf("after the second Apply the backend made %d changes in %d calls, want 2 in 2", et.mem.made, et.mem.applies)
	}
	if !res.Actions[0].At.Equal(t0) || !strings.HasPrefix(res.Lines()[0], "2026-04-14 02:10 UTC: blocked") {
		t.Errorf("second Apply: At %v, line %q, want the time it was first applied", res.Actions[0].At, res.Lines()[0])
	}
	if n := len(et.blocks(t)); n != 2 {
		t.Errorf("store has %d blocks, want 2", n)
	}
	b := et.block(t, plan.Actions[0].Key)
	if b.State != store.BlockVerified || !b.AppliedAt.Equal(t0) || !b.VerifiedAt.Equal(et.now) {
		t.Errorf("after the second Apply, Block = %+v, want verified again at %v, applied at %v", b, et.now, t0)
	}
}

func TestApplyAfterCrashMakesOneChange(t *testing.T) {
	et := newEngineTest(t)
	ctx := context.Background()
	plan := et.plan(t)
	before := et.mem.snapshot()

	// The backend makes the first change, then the call "dies".
	et.mem.failAfter = 1
	res, err := et.Apply(ctx, plan)
	if err != nil || res.Err() == nil || IsPermanent(res.Err()) ||
		res.Actions[0].Outcome != OutcomeFailed || res.Actions[1].Outcome != OutcomeApplied {
		t.Fatalf("Apply (crash on first) = %v, %v, Err %v, want a temporary failure of the first action only", err, outcomes(res), res.Err())
	}
	if !strings.Contains(res.Err().Error(), plan.Actions[0].Key) {
		t.Errorf("Result.Err() %q does not name the action key %s", res.Err(), plan.Actions[0].Key)
	}
	if b := et.block(t, plan.Actions[0].Key); b.State != store.BlockApplying || !strings.Contains(b.LastError, "connection reset") {
		t.Errorf("after the crash, Block = %+v, want applying with the error", b)
	}

	res, err = et.Apply(ctx, plan)
	if err != nil || !reflect.DeepEqual(outcomes(res), []Outcome{OutcomeAlreadyPresent, OutcomeAlreadyPresent}) {
		t.Fatalf("Apply after the crash = %v, %v, want both already present", err, outcomes(res))
	}
	if et.mem.made != 2 {
		t.Errorf("backend made %d changes for 2 actions, want exactly one each", et.mem.made)
	}
	if b := et.block(t, plan.Actions[0].Key); b.State != store.BlockVerified || b.LastError != "" {
		t.Errorf("after the second Apply, Block = %+v, want verified", b)
	}

	// Unblock restores what was there, the crashed action included.
	if _, err := et.Unblock(ctx, "c1"); err != nil {
		t.Fatalf("Unblock = %v", err)
	}
	if got := et.mem.snapshot(); !reflect.DeepEqual(got, before) {
		t.Errorf("after Unblock the backend holds %v, want %v", got, before)
	}
}

func TestApplyRestoresLostBlock(t *testing.T) {
	et := newEngineTest(t)
	ctx := context.Background()
	plan := et.plan(t)
	if _, err := et.Apply(ctx, plan); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	lost := plan.Actions[0].Key
	et.mem.forget(lost) // a reboot flushed the ruleset

	et.now = t0.Add(time.Hour)
	drifts, err := et.Reconcile(ctx)
	if err != nil || len(drifts) != 1 || drifts[0].Key != lost || drifts[0].CaseID != "c1" || !strings.Contains(drifts[0].Detail, "missing") {
		t.Fatalf("Reconcile = %+v, %v, want drift of %s", drifts, err, lost)
	}
	if et.mem.made != 2 {
		t.Errorf("Reconcile re-applied (%d changes), want it to report only", et.mem.made)
	}
	if b := et.block(t, lost); !strings.Contains(b.Check, "missing") || !b.CheckedAt.Equal(et.now) || !b.VerifiedAt.Equal(t0) {
		t.Errorf("after Reconcile, Block = %+v, want the failed check recorded", b)
	}

	et.now = t0.Add(2 * time.Hour)
	res, err := et.Apply(ctx, plan)
	if err != nil || !reflect.DeepEqual(outcomes(res), []Outcome{OutcomeApplied, OutcomeAlreadyPresent}) {
		t.Fatalf("Apply after the loss = %v, %v, want the lost one applied again", err, outcomes(res))
	}
	if et.mem.made != 3 {
		t.Errorf("backend made %d changes, want 3 (one re-applied)", et.mem.made)
	}
	if b := et.block(t, lost); b.State != store.BlockVerified || !b.AppliedAt.Equal(t0) || !b.VerifiedAt.Equal(et.now) {
		t.Errorf("after re-applying, Block = %+v, want verified, first applied at %v", b, t0)
	}
	if drifts, err := et.Reconcile(ctx); err != nil || len(drifts) != 0 {
		t.Errorf("Reconcile after re-applying = %+v, %v, want no drift", drifts, err)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	et := newEngineTest(t)
	plan := et.plan(t)
	plan.DryRun = true
	before := et.mem.snapshot()
	// The dry run needs no store at all.
	e := &Engine{Backends: et.Backends, Now: et.Now}
	res, err := e.Apply(context.Background(), plan)
	if err != nil || !reflect.DeepEqual(outcomes(res), []Outcome{OutcomeDryRun, OutcomeDryRun}) {
		t.Fatalf("Apply(dry run) = %v, %v, want dry-run", err, outcomes(res))
	}
	if len(res.Actions[0].Calls) == 0 || res.Actions[0].Calls[0] != "add deny tcp 203.0.113.5/32 port 22" {
		t.Errorf("Apply(dry run) calls = %q, want the backend's", res.Actions[0].Calls)
	}
	if et.mem.dryRuns != 2 || et.mem.applies != 0 || !reflect.DeepEqual(et.mem.snapshot(), before) {
		t.Errorf("backend saw %d dry runs and %d real applies, want 2 and 0, and no change", et.mem.dryRuns, et.mem.applies)
	}
	// Through the engine with a store, too: no row.
	if _, err := et.Apply(context.Background(), plan); err != nil {
		t.Fatalf("Apply(dry run, with store) = %v", err)
	}
	if bs := et.blocks(t); len(bs) != 0 {
		t.Errorf("store after dry runs holds %d blocks, want none", len(bs))
	}
	if want := "2026-04-14 02:10 UTC: dry run, would block egress tcp 203.0.113.5/32 port 22 in network ACL acl-1"; res.Lines()[0] != want {
		t.Errorf("dry run Lines()[0] = %q, want %q", res.Lines()[0], want)
	}
}

func TestApplyErrors(t *testing.T) {
	ctx := context.Background()

	t.Run("permanent", func(t *testing.T) {
		et := newEngineTest(t)
		plan := et.plan(t)
		et.mem.failApply = MarkPermanent(errors.New("UnauthorizedOperation: not authorized"))
		res, err := et.Apply(ctx, plan)
		if err != nil || !IsPermanent(res.Err()) || !res.Actions[0].Permanent || !res.Failed() {
			t.Fatalf("Apply = %v, Err %v (permanent %v), %+v, want a permanent failure", err, res.Err(), IsPermanent(res.Err()), res.Actions[0])
		}
		if b := et.block(t, plan.Actions[0].Key); b.State != store.BlockApplying || !strings.Contains(b.LastError, "UnauthorizedOperation") {
			t.Errorf("after a permanent failure, Block = %+v, want applying with the error", b)
		}
		// The daemon stores the Result as JSON; its permanence survives.
		doc, _ := json.Marshal(res)
		var back Result
		if err := json.Unmarshal(doc, &back); err != nil || !IsPermanent(back.Err()) {
			t.Errorf("Result from JSON: Err() = %v, %v, want permanent", back.Err(), err)
		}
		if !strings.Contains(res.Actions[0].Error, plan.Actions[0].Key) || !strings.Contains(res.Actions[0].Error, "UnauthorizedOperation") {
			t.Errorf("action error %q, want the key and the cause", res.Actions[0].Error)
		}
		if line := res.Lines()[0]; !strings.Contains(line, "could not block egress tcp to 203.0.113.5/32 port 22") {
			t.Errorf("Lines()[0] = %q, want could not block", line)
		}
	})

	t.Run("temporary", func(t *testing.T) {
		et := newEngineTest(t)
		et.mem.failApply = errors.New("RequestLimitExceeded")
		res, err := et.Apply(ctx, et.plan(t))
		if err != nil || res.Err() == nil || IsPermanent(res.Err()) {
			t.Errorf("Apply = %v, Err %v, want a temporary failure", err, res.Err())
		}
	})

	t.Run("verification does not hold", func(t *testing.T) {
		et := newEngineTest(t)
		plan := et.plan(t)
		et.mem.neverHolds = true
		res, err := et.Apply(ctx, plan)
		if err != nil || res.Actions[0].Outcome != OutcomeFailed || res.Actions[0].Check.Holds || IsPermanent(res.Err()) {
			t.Fatalf("Apply = %v, %+v, want a temporary failure with the check", err, res.Actions[0])
		}
		if b := et.block(t, plan.Actions[0].Key); b.State != store.BlockFailed || !strings.Contains(b.Check, "missing") || !b.VerifiedAt.IsZero() {
			t.Errorf("Block = %+v, want failed with the check", b)
		}
		want := "2026-04-14 02:10 UTC: blocked egress tcp to 203.0.113.5/32 port 22 in network ACL acl-1; verification failed: rule deny tcp 203.0.113.5/32 port 22 missing"
		if got := res.Lines()[0]; got != want {
			t.Errorf("Lines()[0] = %q, want %q", got, want)
		}
		// The next Apply tries again without a second change.
		et.mem.neverHolds = false
		if res, err := et.Apply(ctx, plan); err != nil || !res.Verified() || et.mem.made != 2 {
			t.Errorf("Apply again = %v, %v, %d changes, want verified with no new change", err, outcomes(res), et.mem.made)
		}
	})

	t.Run("undo fails", func(t *testing.T) {
		et := newEngineTest(t)
		plan := et.plan(t)
		if _, err := et.Apply(ctx, plan); err != nil {
			t.Fatalf("Apply = %v", err)
		}
		et.mem.failUndo = errors.New("RequestLimitExceeded")
		res, err := et.Unblock(ctx, "c1")
		if err != nil || res.Err() == nil || IsPermanent(res.Err()) || !strings.Contains(res.Lines()[0], "could not remove the block of all egress to 2001:db8::5/128") {
			t.Fatalf("Unblock = %v, Err %v, %q, want a temporary failure", err, res.Err(), res.Lines())
		}
		if b := et.block(t, plan.Actions[1].Key); b.State != store.BlockRemoving || !strings.Contains(b.LastError, "RequestLimitExceeded") {
			t.Errorf("Block after a failed undo = %+v, want removing with the error", b)
		}
		et.mem.failUndo = nil
		if res, err := et.Unblock(ctx, "c1"); err != nil || res.Err() != nil || len(et.mem.snapshot()) != 1 {
			t.Errorf("Unblock again = %v, %v, backend %v, want everything removed", err, res.Err(), et.mem.snapshot())
		}
	})

	t.Run("changed plan", func(t *testing.T) {
		et := newEngineTest(t)
		plan := et.plan(t)
		plan.Actions[0].Port = 2222
		if _, err := et.Apply(ctx, plan); err == nil || !IsPermanent(err) || et.mem.applies != 0 {
			t.Errorf("Apply(plan changed after hashing) = %v, %d backend calls, want a permanent refusal and no call", err, et.mem.applies)
		}
	})

	t.Run("protected target in a handmade plan", func(t *testing.T) {
		et := newEngineTest(t)
		a := memAction("c1", KindNACL, netip.MustParsePrefix("169.254.169.254/32"), "tcp", 80, 41)
		plan := Plan{CaseID: "c1", Actions: []Action{a}}
		res, err := et.Apply(ctx, plan)
		if err != nil || !IsPermanent(res.Err()) || et.mem.applies != 0 || !strings.Contains(res.Actions[0].Error, "instance metadata") {
			t.Errorf("Apply(metadata service) = %v, %+v, %d backend calls, want refused", err, res.Actions[0], et.mem.applies)
		}
		if bs := et.blocks(t); len(bs) != 0 {
			t.Errorf("store holds %d blocks after a refused action, want none", len(bs))
		}
	})

	t.Run("no backend", func(t *testing.T) {
		et := newEngineTest(t)
		a := memAction("c1", KindNftables, netip.MustParsePrefix("203.0.113.5/32"), "tcp", 22, 0)
		if res, err := et.Apply(ctx, Plan{CaseID: "c1", Actions: []Action{a}}); err != nil || !IsPermanent(res.Err()) {
			t.Errorf("Apply(no nftables backend) = %v, Err %v, want a permanent failure", err, res.Err())
		}
	})
}
