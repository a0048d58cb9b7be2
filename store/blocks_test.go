package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
)

func testBlock(key, caseID string, st BlockState) Block {
	return Block{
		Key: key, CaseID: caseID, Kind: "nacl", State: st,
		Action: []byte(`{"key":"` + key + `"}`),
	}
}

func TestBlockRoundTrip(t *testing.T) {
	s := openTest(t)
	clock(s, t0)
	update(t, s, func(tx *Tx) error { return tx.CreateCase(Case{ID: "c1", State: abuse.StateAnalyzed}, "") })

	// The intent, then the outcome under the same key.
	intent := testBlock("c1:nacl:acl-1:203.0.113.5/32:tcp:22", "c1", BlockApplying)
	update(t, s, func(tx *Tx) error { return tx.PutBlock(intent) })
	var created time.Time
	view(t, s, func(tx *Tx) error {
		b, ok, err := tx.Block(intent.Key)
		if !ok || err != nil || b.State != BlockApplying || len(b.Calls) != 0 || b.Before != nil {
			t.Errorf("Block(intent) = %+v, %v, %v, want applying with nothing known", b, ok, err)
		}
		created = b.CreatedAt
		return nil
	})
	if want := t0.Add(2 * time.Second); !created.Equal(want) {
		t.Fatalf("CreatedAt = %v, want %v (the transaction's time)", created, want)
	}

	done := intent
	done.State = BlockApplied
	done.Before, done.After = []byte(`{"entries":[]}`), []byte(`{"entries":[41]}`)
	done.Calls = []string{"CreateNetworkAclEntry acl-1 41 deny"}
	done.AppliedAt, done.ExpiresAt = t0.Add(time.Minute), t0.Add(time.Hour)
	done.LastError = "earlier try: throttled"
	update(t, s, func(tx *Tx) error { return tx.PutBlock(done) })
	view(t, s, func(tx *Tx) error {
		b, ok, err := tx.Block(intent.Key)
		want := done
		want.CreatedAt = created // kept across the rewrite
		if !ok || err != nil || !reflect.DeepEqual(b, want) {
			t.Errorf("Block(applied) = %+v, %v, %v\nwant %+v", b, ok, err, want)
		}
		if _, ok, err := tx.Block("nope"); ok || err != nil {
			t.Errorf("Block(nope) = %v, %v, want absent", ok, err)
		}
		return nil
	})

	// A verification, then the state it leads to.
	at := t0.Add(2 * time.Minute)
	update(t, s, func(tx *Tx) error {
		if err := tx.RecordBlockCheck(intent.Key, true, "entry 41 present", at); err != nil {
			return err
		}
		return tx.SetBlockState(intent.Key, BlockVerified, "", at)
	})
	view(t, s, func(tx *Tx) error {
		b, _, err := tx.Block(intent.Key)
		if err != nil || b.State != BlockVerified || b.Check != "entry 41 present" || !b.VerifiedAt.Equal(at) ||
			!b.CheckedAt.Equal(at) || b.LastError != "" || !b.AppliedAt.Equal(done.AppliedAt) {
			t.Errorf("Block(verified) = %+v, %v", b, err)
		}
		return nil
	})

	// A failed check records the detail and leaves VerifiedAt alone.
	later := at.Add(time.Hour)
	update(t, s, func(tx *Tx) error {
		if err := tx.RecordBlockCheck(intent.Key, false, "entry 41 missing", later); err != nil {
			return err
		}
		if err := tx.ExtendBlock(intent.Key, later.Add(time.Hour)); err != nil {
			return err
		}
		return tx.SetBlockState(intent.Key, BlockRemoved, "", later)
	})
	// Setting the state it is in already (to record an error) keeps its time.
	update(t, s, func(tx *Tx) error {
		return tx.SetBlockState(intent.Key, BlockRemoved, "undo: throttled", later.Add(time.Hour))
	})
	view(t, s, func(tx *Tx) error {
		b, _, err := tx.Block(intent.Key)
		if err != nil || b.Check != "entry 41 missing" || !b.VerifiedAt.Equal(at) || !b.CheckedAt.Equal(later) ||
			!b.ExpiresAt.Equal(later.Add(time.Hour)) || b.State != BlockRemoved || !b.RemovedAt.Equal(later) ||
			b.LastError != "undo: throttled" {
			t.Errorf("Block(removed) = %+v, %v", b, err)
		}
		return nil
	})
}

func TestBlocksFilter(t *testing.T) {
	s := openTest(t)
	clock(s, t0)
	update(t, s, func(tx *Tx) error {
		for _, id := range []string{"c1", "c2"} {
			if err := tx.CreateCase(Case{ID: id, State: abuse.StateAnalyzed}, ""); err != nil {
				return err
			}
		}
		return nil
	})
	for _, b := range []Block{
		testBlock("c1:a", "c1", BlockVerified),
		testBlock("c2:a", "c2", BlockApplied),
		testBlock("c1:b", "c1", BlockRemoved),
		testBlock("c1:c", "c1", BlockApplying),
	} {
		update(t, s, func(tx *Tx) error { return tx.PutBlock(b) })
	}
	// Rewriting a block keeps its place in the order.
	update(t, s, func(tx *Tx) error { return tx.PutBlock(testBlock("c1:a", "c1", BlockFailed)) })

	for _, c := range []struct {
		f    BlockFilter
		want []string
	}{
		{BlockFilter{}, []string{"c1:a", "c2:a", "c1:b", "c1:c"}},
		{BlockFilter{CaseID: "c1"}, []string{"c1:a", "c1:b", "c1:c"}},
		{BlockFilter{States: []BlockState{BlockFailed, BlockApplied}}, []string{"c1:a", "c2:a"}},
		{BlockFilter{CaseID: "c1", States: []BlockState{BlockRemoved}}, []string{"c1:b"}},
		{BlockFilter{CaseID: "none"}, nil},
	} {
		view(t, s, func(tx *Tx) error {
			bs, err := tx.Blocks(c.f)
			var got []string
			for _, b := range bs {
				got = append(got, b.Key)
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("Blocks(%+v) = %v, %v, want %v", c.f, got, err, c.want)
			}
			return nil
		})
	}
}

func TestBlockErrors(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	update(t, s, func(tx *Tx) error { return tx.CreateCase(Case{ID: "c1", State: abuse.StateAnalyzed}, "") })
	for _, c := range []struct {
		name string
		fn   func(tx *Tx) error
		is   error
	}{
		{"PutBlock(empty key)", func(tx *Tx) error { return tx.PutBlock(testBlock("", "c1", BlockApplying)) }, nil},
		{"PutBlock(no case)", func(tx *Tx) error { return tx.PutBlock(testBlock("k", "", BlockApplying)) }, nil},
		{"PutBlock(case missing)", func(tx *Tx) error { return tx.PutBlock(testBlock("k", "missing", BlockApplying)) }, nil},
		{"PutBlock(bad state)", func(tx *Tx) error { return tx.PutBlock(testBlock("k", "c1", "gone")) }, nil},
		{"SetBlockState(missing)", func(tx *Tx) error { return tx.SetBlockState("nope", BlockRemoved, "", time.Time{}) }, ErrNotFound},
		{"SetBlockState(bad state)", func(tx *Tx) error { return tx.SetBlockState("nope", "gone", "", time.Time{}) }, nil},
		{"RecordBlockCheck(missing)", func(tx *Tx) error { return tx.RecordBlockCheck("nope", true, "", time.Time{}) }, ErrNotFound},
		{"ExtendBlock(missing)", func(tx *Tx) error { return tx.ExtendBlock("nope", t0) }, ErrNotFound},
	} {
		err := s.Update(ctx, c.fn)
		if err == nil || c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s = %v, want an error (%v)", c.name, err, c.is)
		}
	}
}
