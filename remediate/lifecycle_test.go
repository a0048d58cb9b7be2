package remediate

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/store"
)

func TestUnblockRestores(t *testing.T) {
	et := newEngineTest(t)
	ctx := context.Background()
	plan := et.plan(t)
	before := et.mem.snapshot()
	if _, err := et.Apply(ctx, plan); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	if active, err := et.Active(ctx); err != nil || len(active) != 2 {
		t.Errorf("Active = %d blocks, %v, want 2", len(active), err)
	}

	et.now = t0.Add(time.Hour)
	res, err := et.Unblock(ctx, "c1")
	if err != nil || !reflect.DeepEqual(outcomes(res), []Outcome{OutcomeRemoved, OutcomeRemoved}) {
		t.Fatalf("Unblock = %v, %v, want both removed", err, outcomes(res))
	}
	if res.Actions[0].Key != plan.Actions[1].Key {
		t.Errorf("Unblock undid %s first, want the newest, %s", res.Actions[0].Key, plan.Actions[1].Key)
	}
	if got := et.mem.snapshot(); !reflect.DeepEqual(got, before) {
		t.Errorf("after Unblock the backend holds %v, want %v", got, before)
	}
	for _, b := range et.blocks(t) {
		if b.State != store.BlockRemoved || !b.RemovedAt.Equal(et.now) {
			t.Errorf("after Unblock, Block = %+v, want removed at %v", b, et.now)
		}
	}
	if want := "2026-04-14 03:10 UTC: removed the block of all egress to 2001:db8::5/128 in network ACL acl-1"; res.Lines()[0] != want {
		t.Errorf("Unblock Lines()[0] = %q, want %q", res.Lines()[0], want)
	}
	if active, err := et.Active(ctx); err != nil || len(active) != 0 {
		t.Errorf("Active after Unblock = %d blocks, %v, want none", len(active), err)
	}

	undos := et.mem.undos
	res, err = et.Unblock(ctx, "c1")
	if err != nil || !reflect.DeepEqual(outcomes(res), []Outcome{OutcomeAlreadyRemoved, OutcomeAlreadyRemoved}) || et.mem.undos != undos {
		t.Errorf("second Unblock = %v, %v, %d undo calls, want nothing done", err, outcomes(res), et.mem.undos-undos)
	}

	// Applying after an unblock blocks again, as a new block.
	et.now = t0.Add(2 * time.Hour)
	if res, err := et.Apply(ctx, plan); err != nil || res.Actions[0].Outcome != OutcomeApplied || !res.Actions[0].At.Equal(et.now) {
		t.Errorf("Apply after Unblock = %v, %+v, want applied anew", err, res.Actions[0])
	}
}

func TestExpire(t *testing.T) {
	et := newEngineTest(t)
	et.BlockTTL = time.Hour
	ctx := context.Background()
	plan := et.plan(t)
	if _, err := et.Apply(ctx, plan); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	keep, drop := plan.Actions[0].Key, plan.Actions[1].Key

	// Not yet due.
	if removed, extended, err := et.Expire(ctx, t0.Add(59*time.Minute), nil); err != nil || len(removed.Actions) != 0 || len(extended) != 0 {
		t.Fatalf("Expire before the TTL = %+v, %+v, %v, want nothing", removed, extended, err)
	}

	now := t0.Add(2 * time.Hour)
	et.now = now
	active := func(b store.Block) bool { return b.Key == keep }
	removed, extended, err := et.Expire(ctx, now, active)
	if err != nil || len(removed.Actions) != 1 || removed.Actions[0].Key != drop || removed.Actions[0].Outcome != OutcomeRemoved ||
		removed.Actions[0].CaseID != "c1" {
		t.Fatalf("Expire = %+v, %v, want %s removed", removed, err, drop)
	}
	if len(extended) != 1 || extended[0].Key != keep || !extended[0].ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("Expire extended %+v, want %s until %v", extended, keep, now.Add(time.Hour))
	}
	if b := et.block(t, keep); b.State != store.BlockVerified || !b.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("extended Block = %+v", b)
	}
	if b := et.block(t, drop); b.State != store.BlockRemoved {
		t.Errorf("expired Block = %+v, want removed", b)
	}
	if _, ok := et.mem.snapshot()[keep]; !ok {
		t.Errorf("the extended block is gone from the backend")
	}
	if _, ok := et.mem.snapshot()[drop]; ok {
		t.Errorf("the expired block is still in the backend")
	}

	// With no TTL, nothing ever expires.
	et.BlockTTL = 0
	if removed, extended, err := et.Expire(ctx, now.Add(1000*time.Hour), nil); err != nil || len(removed.Actions)+len(extended) != 0 {
		t.Errorf("Expire with BlockTTL 0 = %+v, %+v, %v, want nothing", removed, extended, err)
	}
}
