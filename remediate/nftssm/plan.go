package nftssm

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/remediate/nft"
)

// Plan proposes, when remediate.KindNftables is among in.Policy.Kinds,
// one action per instance and distinct target: the host backend's block,
// made on the instance. An instance carrying in.Policy.ProtectTag stops
// the plan, as with the EC2 kinds; a target nftables cannot block, or an
// instance in an account we may not act in, is a Refusal.
//
// Plan does not ask the instances (a Run Command per target would make a
// plan take seconds and need the agent up): the calls are what Apply
// makes on an instance without our table, and Apply leaves out what is
// there already. A dry run asks the instance and returns the exact calls.
func (b *Backend) Plan(ctx context.Context, in remediate.Input) ([]remediate.Action, []remediate.Refusal, error) {
	if !slices.Contains(in.Policy.Kinds, remediate.KindNftables) {
		return nil, nil, nil
	}
	var (
		actions  []remediate.Action
		refusals []remediate.Refusal
	)
	if len(in.Instances) == 0 && len(in.Targets) > 0 {
		refusals = append(refusals, remediate.Refusal{What: string(remediate.KindNftables),
			Reason: "nftables on the instance: the notice names no instance of ours"})
	}
	for _, ref := range in.Instances {
		if !instanceIDRE.MatchString(ref.ID) {
			refusals = append(refusals, remediate.Refusal{What: ref.ID, Reason: "not an EC2 instance ID"})
			continue
		}
		if err := b.place(ref.Account, ref.Region); err != nil {
			refusals = append(refusals, remediate.Refusal{What: ref.ID, Reason: err.Error()})
			continue
		}
		if tag := in.Policy.ProtectTag; tag != "" {
			protected, err := b.protected(ctx, ref, tag)
			if err != nil {
				return nil, nil, err
			}
			if protected {
				return nil, []remediate.Refusal{{What: ref.ID, Stop: true,
					Reason: fmt.Sprintf("instance %s carries the protect tag %q: nothing is changed automatically, a human decides", ref.ID, tag)}}, nil
			}
		}
		as, rs := planInstance(in, ref)
		actions, refusals = append(actions, as...), append(refusals, rs...)
	}
	return actions, refusals, nil
}

// protected reports whether the instance carries the tag key.
func (b *Backend) protected(ctx context.Context, ref remediate.InstanceRef, tag string) (bool, error) {
	c, err := b.get(ctx, ref.Account, ref.Region)
	if err != nil {
		return false, err
	}
	out, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{ref.ID}})
	if err != nil {
		return false, classify(fmt.Errorf("nftssm: describe instance %s: %w", ref.ID, err))
	}
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			for _, t := range inst.Tags {
				if t.Key != nil && *t.Key == tag {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// planInstance is the host backend's plan for one instance, offline: its
// calls are those made on an instance without our table.
func planInstance(in remediate.Input, ref remediate.InstanceRef) ([]remediate.Action, []remediate.Refusal) {
	return nft.PlanTargets(in, func(tail string) string { return in.CaseID + ":nftables:" + ref.ID + ":" + tail },
		func(blk nft.Block, key string, first bool) (remediate.Action, error) {
			return remediate.Action{
				Reason:     fmt.Sprintf("%s: reject %s from instance %s in table inet %s", in.Type, blk.Describe(), ref.ID, nft.DefaultTable),
				InstanceID: ref.ID,
				Region:     ref.Region,
				Account:    ref.Account,
				Resource:   "instance:" + ref.ID,
				Calls:      blk.Calls(nft.DefaultTable, first, in.Policy.BlockTTL, key),
			}, nil
		})
}
