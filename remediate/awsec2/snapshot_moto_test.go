package awsec2_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/abuse-responder/abuse-responder/remediate"
)

// caseSnapshots lists the snapshots moto holds with case-7's tag, as
// "volume snapshot description".
func (w *motoWorld) caseSnapshots(t *testing.T) []string {
	t.Helper()
	out, err := w.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{
		Filters: []types.Filter{{Name: aws.String("tag:abuse-responder:case"), Values: []string{"case-7"}}},
	})
	fatalIf(t, "DescribeSnapshots", err)
	var snaps []string
	for _, s := range out.Snapshots {
		snaps = append(snaps, aws.ToString(s.VolumeId)+" "+aws.ToString(s.SnapshotId)+" "+aws.ToString(s.Description))
	}
	slices.Sort(snaps)
	return snaps
}

// TestQuarantineSnapshotsOnMoto: moto attaches a root volume to the
// instance it runs, and serves CreateSnapshot with tags, DescribeSnapshots
// with tag filters, and DryRun.
func TestQuarantineSnapshotsOnMoto(t *testing.T) {
	w := newMotoWorld(t)
	ctx := context.Background()
	original := w.eniGroups(t)
	in := motoInput(w, []remediate.Kind{remediate.KindQuarantine}, "203.0.113.5:22")
	in.Policy.Snapshots = true
	actions, refusals := mustPlan(t, w.backend, in)
	if len(actions) != 1 || len(refusals) != 0 || !strings.HasPrefix(actions[0].Calls[0], "ec2:CreateSnapshot VolumeId=vol-") {
		t.Fatalf("Plan = %+v, %+v; want one quarantine that snapshots the root volume first", actions, refusals)
	}
	a := actions[0]

	if _, err := w.backend.Apply(ctx, a, true); err != nil {
		t.Fatalf("Apply(dry run): %v", err)
	}
	if got := w.caseSnapshots(t); len(got) != 0 {
		t.Fatalf("dry run made snapshots %v", got)
	}

	c, err := w.backend.Apply(ctx, a, false)
	if err != nil || !c.Made {
		t.Fatalf("Apply = %+v, %v", c, err)
	}
	snaps := w.caseSnapshots(t)
	if len(snaps) != 1 || !strings.Contains(snaps[0], "abuse-responder case-7 forensic snapshot of vol-") {
		t.Fatalf("snapshots after Apply = %v, want one of the root volume", snaps)
	}
	if got := w.eniGroups(t); !slices.Equal(got, []string{w.quarantine}) {
		t.Errorf("groups after Apply = %v, want only %s", got, w.quarantine)
	}

	if _, err := w.backend.Apply(ctx, a, false); err != nil {
		t.Fatalf("re-Apply: %v", err)
	}
	if again := w.caseSnapshots(t); !slices.Equal(again, snaps) {
		t.Errorf("snapshots after re-Apply = %v, want still %v", again, snaps)
	}

	if err := w.backend.Undo(ctx, c); err != nil {
		t.Fatalf("Undo: %v", err)
	}
	if got := w.eniGroups(t); !slices.Equal(got, original) {
		t.Errorf("groups after Undo = %v, want %v", got, original)
	}
	if kept := w.caseSnapshots(t); !slices.Equal(kept, snaps) {
		t.Errorf("snapshots after Undo = %v, want the evidence kept: %v", kept, snaps)
	}
}
