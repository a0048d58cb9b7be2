package awsec2

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/abuse-responder/abuse-responder/remediate"
)

// Forensic snapshots (remediate.Policy.Snapshots). Before a quarantine
// swaps an instance's groups, its KindQuarantine action takes one EBS
// snapshot of each attached volume. They are part of the quarantine action
// rather than an action of their own, so that they are always taken before
// the swap (one Apply does both, in order) and share its key, record and
// refusals; the plan lists the exact CreateSnapshot calls first.
//
// Each snapshot is created with its tags (TagSpecifications), never tagged
// afterwards: a crash right after CreateSnapshot still leaves a snapshot
// that the next Apply finds by its tags (abuse-responder:case and
// abuse-responder:instance) instead of taking another one. A snapshot
// captures the volume at the moment of the call even while it is still
// pending, so Apply does not wait for it to complete before swapping.
//
// The snapshots are evidence, and evidence outlives the block: Undo
// (`unblock`, expiry) never deletes them. Their IDs are in the Change's
// After ("snapshots"); deleting them is left to a human, with the case.

// createSnapshotCall starts the plan's CreateSnapshot calls. Apply takes
// the snapshots when the action's Calls name it, so that what is applied
// is what the approver read in the plan, even when the policy changed in
// between.
const createSnapshotCall = "ec2:CreateSnapshot"

// forensicSnapshot is one snapshot in a KindQuarantine Change.After.
type forensicSnapshot struct {
	Volume   string `json:"volume_id"`
	Snapshot string `json:"snapshot_id"`
}

// snapshotDescription is the snapshot's Description, which says what it is
// to whoever finds it in the console without our tags in view.
func snapshotDescription(caseID, inst, vol string) string {
	return fmt.Sprintf("abuse-responder %s forensic snapshot of %s on %s", caseID, vol, inst)
}

// snapshotCall writes the CreateSnapshot call with its exact parameters,
// as the SDK sends them (tagsOf sorts the tags: case, then instance).
func snapshotCall(caseID, inst, vol string) string {
	return fmt.Sprintf("%s VolumeId=%s Description=%q TagSpecification.1.ResourceType=snapshot"+
		" TagSpecification.1.Tag.1.Key=%s TagSpecification.1.Tag.1.Value=%s"+
		" TagSpecification.1.Tag.2.Key=%s TagSpecification.1.Tag.2.Value=%s",
		createSnapshotCall, vol, snapshotDescription(caseID, inst, vol), tagCase, caseID, tagInstance, inst)
}

// snapshotCalls lists the CreateSnapshot calls of a plan, one per volume.
func snapshotCalls(caseID string, inst instance) []string {
	var calls []string
	for _, v := range inst.Volumes {
		calls = append(calls, snapshotCall(caseID, inst.ID, v))
	}
	return calls
}

// wantsSnapshots reports whether a's plan takes forensic snapshots.
func wantsSnapshots(a remediate.Action) bool {
	for _, c := range a.Calls {
		if strings.HasPrefix(c, createSnapshotCall+" ") {
			return true
		}
	}
	return false
}

// findSnapshots returns, by volume ID, this case's snapshots of the
// instance's volumes. A failed snapshot (state error) is no evidence and
// is left out, so that Apply takes another one.
func (b *Backend) findSnapshots(ctx context.Context, caseID, instID string) (map[string]string, error) {
	out := map[string]string{}
	// OwnerIds self: without it AWS also searches every public snapshot.
	p := ec2.NewDescribeSnapshotsPaginator(b.ec2, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters: []types.Filter{
			{Name: aws.String("tag:" + tagCase), Values: []string{caseID}},
			{Name: aws.String("tag:" + tagInstance), Values: []string{instID}},
		},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap(err, "find the forensic snapshots of %s for case %s", instID, caseID)
		}
		for _, s := range page.Snapshots {
			if s.State == types.SnapshotStateError {
				continue
			}
			out[aws.ToString(s.VolumeId)] = aws.ToString(s.SnapshotId)
		}
	}
	return out, nil
}

// takeSnapshots makes sure each volume of inst has a forensic snapshot of
// this case, creating the missing ones. It returns every snapshot, found
// or made, and the calls it made. With dryRun it creates none: each
// missing one is asked with DryRun=true, which must answer DryRunOperation.
// Any failure stops the quarantine before the swap: the plan's ACL denies
// still block the targets, and a person decides whether to isolate the
// instance without its evidence.
func (b *Backend) takeSnapshots(ctx context.Context, inst instance, caseID string, dryRun bool) ([]forensicSnapshot, []string, error) {
	have, err := b.findSnapshots(ctx, caseID, inst.ID)
	if err != nil {
		return nil, nil, err
	}
	var snaps []forensicSnapshot
	var calls []string
	for _, vol := range inst.Volumes {
		if id, ok := have[vol]; ok {
			snaps = append(snaps, forensicSnapshot{Volume: vol, Snapshot: id})
			continue
		}
		out, err := b.ec2.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{
			VolumeId:    aws.String(vol),
			Description: aws.String(snapshotDescription(caseID, inst.ID, vol)),
			TagSpecifications: []types.TagSpecification{{
				ResourceType: types.ResourceTypeSnapshot,
				Tags:         tagsOf(map[string]string{tagCase: caseID, tagInstance: inst.ID}),
			}},
			DryRun: aws.Bool(dryRun),
		})
		if dryRun {
			if !isDryRunOK(err) {
				return nil, nil, wrap(err, "dry-run snapshot %s of %s", vol, inst.ID)
			}
			continue
		}
		if err != nil {
			return snaps, calls, wrap(err, "snapshot %s of %s for case %s", vol, inst.ID, caseID)
		}
		id := aws.ToString(out.SnapshotId)
		snaps = append(snaps, forensicSnapshot{Volume: vol, Snapshot: id})
		calls = append(calls, snapshotCall(caseID, inst.ID, vol)+" -> "+id+" (evidence: unblock keeps it)")
	}
	return snaps, calls, nil
}
