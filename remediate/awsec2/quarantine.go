package awsec2

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/abuse-responder/abuse-responder/remediate"
)

// KindQuarantine swaps every group on the instance's ENIs for the
// isolation group (Policy.QuarantineGroup) and tags the instance with the
// case and each ENI's groups before, so that Undo restores them even
// without the recorded Change. A group swap leaves connections already
// tracked open, so the planner (the engine) always adds NACL denies for
// the targets too. With Policy.Snapshots it first takes a forensic EBS
// snapshot of each attached volume (snapshot.go), which Undo keeps.

// quarantineBefore is a KindQuarantine Change.Before: each ENI's groups,
// and the values our tag keys had (nil: absent).
type quarantineBefore struct {
	ENIs map[string][]string `json:"enis"`
	Tags map[string]*string  `json:"tags"`
}

// quarantineAfter is a KindQuarantine Change.After. Snapshots are the
// forensic snapshots taken (or found) before the swap; Undo leaves them.
type quarantineAfter struct {
	Group     string             `json:"group"`
	Snapshots []forensicSnapshot `json:"snapshots,omitempty"`
	DryRun    bool               `json:"dry_run,omitempty"`
}

func (b *Backend) planQuarantine(ctx context.Context, in remediate.Input, insts []instance) ([]remediate.Action, []remediate.Refusal, error) {
	qg := in.Policy.QuarantineGroup
	var actions []remediate.Action
	var refusals []remediate.Refusal
	for _, inst := range insts {
		if qg == "" {
			refusals = append(refusals, remediate.Refusal{What: inst.ID, Reason: "quarantine is configured without a quarantine group"})
			continue
		}
		if other := inst.Tags[tagCase]; other != "" && other != in.CaseID {
			refusals = append(refusals, remediate.Refusal{What: inst.ID, Reason: fmt.Sprintf("instance %s is already quarantined by case %s", inst.ID, other)})
			continue
		}
		gs, err := b.describeGroups(ctx, []string{qg})
		if err != nil && !isNotFound(err) {
			return nil, nil, err
		}
		if len(gs) != 1 || gs[0].VPCID != inst.VPCID {
			refusals = append(refusals, remediate.Refusal{What: inst.ID, Reason: fmt.Sprintf("the quarantine group %s does not exist in %s, the VPC of %s", qg, inst.VPCID, inst.ID)})
			continue
		}
		ref := refOf(in, inst.ID)
		reason := fmt.Sprintf("isolate %s: swap every group on its interfaces for %s", inst.ID, qg)
		var calls []string
		if in.Policy.Snapshots {
			// Snapshots first: the calls are listed in the order Apply makes them.
			calls = snapshotCalls(in.CaseID, inst)
			reason = snapshotReason(inst, qg)
		}
		calls = append(calls, fmt.Sprintf("ec2:CreateTags ResourceId.1=%s Tag.1.Key=%s Tag.1.Value=%s (and each ENI's groups)", inst.ID, tagCase, in.CaseID))
		for _, e := range inst.ENIs {
			calls = append(calls, setGroupsCall(inst, e.ID, []string{qg}))
		}
		actions = append(actions, remediate.Action{
			Key:        fmt.Sprintf("%s:%s:%s", in.CaseID, remediate.KindQuarantine, inst.ID),
			Kind:       remediate.KindQuarantine,
			Reason:     reason,
			InstanceID: ref.ID, Region: ref.Region, Account: ref.Account,
			Resource: inst.ID, GroupIDs: []string{qg}, Calls: calls,
		})
	}
	return actions, refusals, nil
}

// snapshotReason is the Reason of a quarantine that takes snapshots
// first. It says that unblock keeps them, since the unblock result shows
// the recorded action and Undo cannot say so itself.
func snapshotReason(inst instance, qg string) string {
	if len(inst.Volumes) == 0 {
		return fmt.Sprintf("isolate %s: swap every group on its interfaces for %s (no EBS volume to snapshot)", inst.ID, qg)
	}
	return fmt.Sprintf("isolate %s: take forensic snapshots of %s (evidence: unblock keeps them), then swap every group on its interfaces for %s",
		inst.ID, strings.Join(inst.Volumes, ", "), qg)
}

// applyQuarantine takes the forensic snapshots when the plan lists them,
// then tags, then swaps: the snapshots show the instance before anything
// is changed, and after a crash between tagging and swapping the tags
// still hold the groups before.
func (b *Backend) applyQuarantine(ctx context.Context, a remediate.Action, dryRun bool) (remediate.Change, error) {
	if len(a.GroupIDs) != 1 || a.GroupIDs[0] == "" {
		return remediate.Change{}, permanentf("action %s names no quarantine group", a.Key)
	}
	qg, caseID := a.GroupIDs[0], caseOf(a.Key, remediate.KindQuarantine)
	inst, err := b.describeInstance(ctx, a.InstanceID)
	if err != nil {
		return remediate.Change{}, err
	}
	if other := inst.Tags[tagCase]; other != "" && other != caseID {
		return remediate.Change{}, permanentf("instance %s is already quarantined by case %s", inst.ID, other)
	}
	var snaps []forensicSnapshot
	var calls []string
	if wantsSnapshots(a) {
		if snaps, calls, err = b.takeSnapshots(ctx, inst, caseID, dryRun); err != nil {
			return remediate.Change{}, err
		}
	}
	before := quarantineBefore{ENIs: enisOf(inst), Tags: map[string]*string{}}
	tags := enisTags(before.ENIs)
	if inst.Tags[tagCase] == caseID {
		before.ENIs = enisFromTags(inst.Tags) // ours already: the tags know the groups before
		tags = enisTags(before.ENIs)
	}
	tags[tagCase] = caseID
	for k := range tags {
		if v, ok := inst.Tags[k]; ok && inst.Tags[tagCase] != caseID {
			before.Tags[k] = aws.String(v)
		} else {
			before.Tags[k] = nil
		}
	}
	if !sameTags(inst.Tags, tags) || dryRun {
		_, err := b.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{inst.ID}, Tags: tagsOf(tags), DryRun: aws.Bool(dryRun)})
		if dryRun {
			if !isDryRunOK(err) {
				return remediate.Change{}, wrap(err, "dry-run tag %s", inst.ID)
			}
			return remediate.Change{Before: mustJSON(before), After: mustJSON(quarantineAfter{Group: qg, Snapshots: snaps, DryRun: true}), Calls: a.Calls}, nil
		}
		if err != nil {
			return remediate.Change{}, wrap(err, "tag %s with %s=%s", inst.ID, tagCase, caseID)
		}
		calls = append(calls, fmt.Sprintf("ec2:CreateTags ResourceId.1=%s %s", inst.ID, tagList(tags)))
	}
	c, err := b.swap(ctx, inst, []string{qg})
	calls = append(calls, c...)
	if err != nil {
		return remediate.Change{}, err
	}
	return remediate.Change{Made: len(calls) > 0, Before: mustJSON(before), After: mustJSON(quarantineAfter{Group: qg, Snapshots: snaps}), Calls: calls}, nil
}

func sameTags(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func tagList(tags map[string]string) string {
	var parts []string
	for k, v := range tags {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func (b *Backend) verifyQuarantine(ctx context.Context, a remediate.Action) (remediate.Check, error) {
	inst, err := b.describeInstance(ctx, a.InstanceID)
	if err != nil {
		return remediate.Check{}, err
	}
	for _, e := range inst.ENIs {
		if !sameSet(e.Groups, a.GroupIDs) {
			return remediate.Check{Detail: fmt.Sprintf("%s carries %v, not only %v", e.ID, e.Groups, a.GroupIDs)}, nil
		}
	}
	return remediate.Check{Holds: true, Detail: fmt.Sprintf("every ENI of %s carries only %v", inst.ID, a.GroupIDs)}, nil
}

// undoQuarantine restores the groups on the ENIs that still carry only
// the quarantine group, then the tags, while the instance is still
// tagged with this case; otherwise someone else has taken over and it is
// left alone. It never deletes the forensic snapshots (after.Snapshots):
// they are evidence, which outlives the block.
func (b *Backend) undoQuarantine(ctx context.Context, c remediate.Change) error {
	var before quarantineBefore
	var after quarantineAfter
	if len(c.Before) > 0 {
		if err := json.Unmarshal(c.Before, &before); err != nil {
			return permanentf("undo %s: bad Before record: %v", c.Key, err)
		}
	}
	if len(c.After) > 0 {
		if err := json.Unmarshal(c.After, &after); err != nil {
			return permanentf("undo %s: bad After record: %v", c.Key, err)
		}
	}
	if after.DryRun {
		return nil
	}
	caseID := caseOf(c.Key, remediate.KindQuarantine)
	instID := strings.TrimPrefix(c.Key, caseID+":"+string(remediate.KindQuarantine)+":")
	inst, err := b.describeInstance(ctx, instID)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if inst.Tags[tagCase] != caseID {
		return nil // never applied, already undone, or someone else's now
	}
	original := before.ENIs
	if len(original) == 0 {
		original = enisFromTags(inst.Tags)
	}
	if after.Group != "" {
		if err := b.restore(ctx, inst, []string{after.Group}, original); err != nil {
			return err
		}
	} else {
		// No record: any ENI on one group that differs from its original
		// is taken to carry the quarantine group.
		for _, e := range inst.ENIs {
			if orig, ok := original[e.ID]; ok && len(e.Groups) == 1 && !sameSet(e.Groups, orig) {
				if err := b.setGroups(ctx, inst, e.ID, orig); err != nil {
					return err
				}
			}
		}
	}
	return b.restoreTags(ctx, inst, before.Tags)
}

// restoreTags deletes the tags we wrote, putting back the values they had.
func (b *Backend) restoreTags(ctx context.Context, inst instance, old map[string]*string) error {
	var del []types.Tag
	put := map[string]string{}
	for k := range inst.Tags {
		if k != tagCase && !strings.HasPrefix(k, tagGroupsOfENI) {
			continue
		}
		if v, had := old[k]; had && v != nil {
			put[k] = *v
		} else {
			del = append(del, types.Tag{Key: aws.String(k)})
		}
	}
	if len(del) > 0 {
		if _, err := b.ec2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{inst.ID}, Tags: del}); err != nil {
			return wrap(err, "delete tags of %s", inst.ID)
		}
	}
	if len(put) > 0 {
		if _, err := b.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{inst.ID}, Tags: tagsOf(put)}); err != nil {
			return wrap(err, "restore tags of %s", inst.ID)
		}
	}
	return nil
}
