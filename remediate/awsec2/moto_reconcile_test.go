package awsec2_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/store"
)

// TestReconcileOnMoto runs the engine on a real store and this backend on
// moto: an entry deleted by hand is drift, Maintain puts it back, and
// Unblock leaves the ACL as it was before the case.
func TestReconcileOnMoto(t *testing.T) {
	w := newMotoWorld(t)
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	in := motoInput(w, naclOnly, "203.0.113.5:22")
	if err := st.Update(ctx, func(tx *store.Tx) error {
		return tx.CreateCase(store.Case{ID: in.CaseID, State: abuse.StateAnalyzed}, "test")
	}); err != nil {
		t.Fatal(err)
	}
	eng := &remediate.Engine{Store: st, Backends: []remediate.Backend{w.backend}, BlockTTL: time.Hour}
	original := w.aclJSON(t)
	plan, err := remediate.BuildPlan(ctx, in, []remediate.Backend{w.backend})
	if err != nil || len(plan.Actions) != 1 {
		t.Fatalf("BuildPlan = %+v, %v; want one action", plan, err)
	}
	if res, err := eng.Apply(ctx, plan); err != nil || !res.Verified() {
		t.Fatalf("Apply = %+v, %v; want verified", res, err)
	}
	applied := w.aclJSON(t)

	// Someone deletes our entry by hand.
	_, err = w.EC2.DeleteNetworkAclEntry(ctx, &ec2.DeleteNetworkAclEntryInput{NetworkAclId: aws.String(w.ACL),
		RuleNumber: aws.Int32(plan.Actions[0].RuleNumber), Egress: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := eng.Maintain(ctx, time.Now(), nil)
	if err != nil || len(m.Drift) != 1 || len(m.Restored.Actions) != 1 || m.Restored.Actions[0].Outcome != remediate.OutcomeApplied {
		t.Fatalf("Maintain = drift %+v, restored %+v, %v; want the entry found missing and put back", m.Drift, m.Restored.Actions, err)
	}
	if again := w.aclJSON(t); again != applied {
		t.Errorf("ACL after the restore:\n%s\nwant as applied:\n%s", again, applied)
	}
	if !strings.Contains(strings.Join(m.Lines(), "\n"), "no longer holds") {
		t.Errorf("Maintain lines = %q", m.Lines())
	}

	if _, err := eng.Unblock(ctx, in.CaseID); err != nil {
		t.Fatalf("Unblock = %v", err)
	}
	if restored := w.aclJSON(t); restored != original {
		t.Errorf("ACL after Unblock:\n%s\nwant the original:\n%s", restored, original)
	}
}
