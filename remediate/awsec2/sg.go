package awsec2

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/abuse-responder/abuse-responder/remediate"
)

// KindSecurityGroup never edits a group other instances may share. It
// creates a per-case, per-instance copy of the union of the instance's
// groups without the abused traffic, and swaps it in on every ENI. The
// abused protocol and port are removed for every destination on this
// instance, not only the targets: carving the targets out of a 0.0.0.0/0
// rule would take dozens of rules. Swapping groups leaves connections
// already tracked open, so the planner pairs it with NACL denies.

// sgBefore is a KindSecurityGroup Change.Before: each ENI's groups.
type sgBefore struct {
	GroupName string              `json:"group_name"`
	VPCID     string              `json:"vpc_id"`
	ENIs      map[string][]string `json:"enis"`
}

// sgAfter is a KindSecurityGroup Change.After.
type sgAfter struct {
	GroupID string   `json:"group_id"`
	Removed []string `json:"removed"`
	DryRun  bool     `json:"dry_run,omitempty"`
}

func caseGroupName(caseID, instanceID string) string {
	return "abuse-responder-" + caseID + "-" + instanceID
}

// caseOf reads the case id from an action key "<case>:<kind>:…".
func caseOf(key string, kind remediate.Kind) string {
	c, _, _ := strings.Cut(key, ":"+string(kind)+":")
	return c
}

// planSecurityGroup plans, per instance and abused protocol and port,
// the swap to the per-case copy, when the instance's groups allow that
// traffic to one of the targets.
func (b *Backend) planSecurityGroup(ctx context.Context, in remediate.Input, insts []instance) ([]remediate.Action, []remediate.Refusal, error) {
	wants, refusals := wantsOf(in)
	var actions []remediate.Action
	for _, inst := range insts {
		gs, err := b.describeGroups(ctx, allGroups(enisOf(inst)))
		if err != nil {
			return nil, nil, err
		}
		var egress []perm
		var ids []string
		for _, g := range gs {
			egress, ids = union(egress, g.Egress), append(ids, g.ID)
		}
		var done []traffic
		for _, w := range wants {
			t := traffic{w.Proto, w.Port}
			if slices.Contains(done, t) || !allows(egress, t, w.Prefix.Addr()) {
				continue
			}
			done = append(done, t)
			ref := refOf(in, inst.ID)
			name := caseGroupName(in.CaseID, inst.ID)
			calls := []string{
				fmt.Sprintf("ec2:CreateSecurityGroup GroupName=%s VpcId=%s (a copy of %s)", name, inst.VPCID, strings.Join(ids, ",")),
				fmt.Sprintf("ec2:AuthorizeSecurityGroupEgress GroupId=%s (the copied egress without %s)", name, t),
			}
			for _, e := range inst.ENIs {
				calls = append(calls, setGroupsCall(inst, e.ID, []string{name}))
			}
			actions = append(actions, remediate.Action{
				Key:  fmt.Sprintf("%s:%s:%s:%s", in.CaseID, remediate.KindSecurityGroup, inst.ID, t.tag()),
				Kind: remediate.KindSecurityGroup,
				Reason: fmt.Sprintf("the groups %s of %s allow %s to %s; swap in %s, a copy without %s to any destination, leaving the shared groups untouched",
					strings.Join(ids, ", "), inst.ID, t, w, name, t),
				InstanceID: ref.ID, Region: ref.Region, Account: ref.Account,
				Resource: inst.ID, Target: w.Prefix, Protocol: w.Proto, Port: w.Port,
				GroupIDs: []string{""}, Calls: calls,
			})
		}
	}
	return actions, refusals, nil
}

// applySecurityGroup makes the per-case group hold the union of the
// original groups without every traffic removed so far (kept in its
// tags), then swaps it in. Each step compares with reality first.
func (b *Backend) applySecurityGroup(ctx context.Context, a remediate.Action, dryRun bool) (remediate.Change, error) {
	inst, err := b.describeInstance(ctx, a.InstanceID)
	if err != nil {
		return remediate.Change{}, err
	}
	name := caseGroupName(caseOf(a.Key, remediate.KindSecurityGroup), inst.ID)
	t := traffic{a.Protocol, a.Port}
	g, exists, err := b.findGroup(ctx, name, inst.VPCID)
	if err != nil {
		return remediate.Change{}, err
	}
	original, removed := enisOf(inst), []string{t.tag()}
	if exists {
		tags, err := b.resourceTags(ctx, g.ID)
		if err != nil {
			return remediate.Change{}, err
		}
		original = enisFromTags(tags)
		for _, r := range strings.Fields(tags[tagRemoved]) {
			if !slices.Contains(removed, r) {
				removed = append(removed, r)
			}
		}
	}
	before := mustJSON(sgBefore{GroupName: name, VPCID: inst.VPCID, ENIs: original})
	if dryRun {
		// One DryRun call proves the permission; the rest are described.
		_, err := b.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name + "-dry-run"),
			Description: aws.String("dry run"), VpcId: aws.String(inst.VPCID), DryRun: aws.Bool(true)})
		if !isDryRunOK(err) {
			return remediate.Change{}, wrap(err, "dry-run create security group %s", name)
		}
		return remediate.Change{Before: before, After: mustJSON(sgAfter{Removed: removed, DryRun: true}), Calls: a.Calls}, nil
	}
	srcs, err := b.describeGroups(ctx, allGroups(original))
	if err != nil {
		return remediate.Change{}, err
	}
	var ingress, egress []perm
	for _, s := range srcs {
		ingress, egress = union(ingress, s.Ingress), union(egress, s.Egress)
	}
	for _, r := range removed {
		proto, port, _ := strings.Cut(r, "/")
		if proto == "all" {
			proto = ""
		}
		var n uint16
		fmt.Sscan(port, &n)
		egress = without(egress, traffic{proto, n})
	}
	var calls []string
	if !exists {
		tags := enisTags(original)
		tags[tagCase], tags[tagInstance] = caseOf(a.Key, remediate.KindSecurityGroup), inst.ID
		out, err := b.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName: aws.String(name), VpcId: aws.String(inst.VPCID),
			Description:       aws.String(fmt.Sprintf("abuse-responder: the groups of %s without abused egress", inst.ID)),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: tagsOf(tags)}},
		})
		switch {
		case isCode(err, "InvalidGroup.Duplicate"):
			// Another Apply of this case created it a moment ago: use it.
			if g, exists, err = b.findGroup(ctx, name, inst.VPCID); err != nil || !exists {
				return remediate.Change{}, fmt.Errorf("find security group %s after a duplicate: %w", name, err)
			}
		case err != nil:
			return remediate.Change{}, wrap(err, "create security group %s", name)
		default:
			calls = append(calls, fmt.Sprintf("ec2:CreateSecurityGroup GroupName=%s VpcId=%s", name, inst.VPCID))
			got, err := b.describeGroups(ctx, []string{aws.ToString(out.GroupId)})
			if err != nil || len(got) != 1 {
				return remediate.Change{}, fmt.Errorf("read back security group %s: %w", name, err)
			}
			g = got[0]
		}
	}
	if _, err := b.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{g.ID},
		Tags: []types.Tag{{Key: aws.String(tagRemoved), Value: aws.String(strings.Join(removed, " "))}}}); err != nil {
		return remediate.Change{}, wrap(err, "tag security group %s", g.ID)
	}
	c, err := b.reconcile(ctx, g, ingress, egress)
	calls = append(calls, c...)
	if err != nil {
		return remediate.Change{}, err
	}
	c, err = b.swap(ctx, inst, []string{g.ID})
	calls = append(calls, c...)
	if err != nil {
		return remediate.Change{}, err
	}
	return remediate.Change{Made: len(calls) > 0, Before: before, After: mustJSON(sgAfter{GroupID: g.ID, Removed: removed}), Calls: calls}, nil
}

// reconcile makes g's rules exactly ingress and egress: revoke what is
// extra (such as the all-traffic egress a new group starts with), then
// authorize what is missing.
func (b *Backend) reconcile(ctx context.Context, g group, ingress, egress []perm) ([]string, error) {
	var calls []string
	if extra := diff(g.Egress, egress); len(extra) > 0 {
		if _, err := b.ec2.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(g.ID), IpPermissions: sdkPerms(extra)}); err != nil {
			return calls, wrap(err, "revoke egress %v from %s", extra, g.ID)
		}
		calls = append(calls, fmt.Sprintf("ec2:RevokeSecurityGroupEgress GroupId=%s %v", g.ID, extra))
	}
	if missing := diff(egress, g.Egress); len(missing) > 0 {
		if _, err := b.ec2.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(g.ID), IpPermissions: sdkPerms(missing)}); err != nil {
			return calls, wrap(err, "authorize egress %v on %s", missing, g.ID)
		}
		calls = append(calls, fmt.Sprintf("ec2:AuthorizeSecurityGroupEgress GroupId=%s %v", g.ID, missing))
	}
	// Ingress is only ever added: the copy's ingress is the originals'.
	if missing := diff(ingress, g.Ingress); len(missing) > 0 {
		if _, err := b.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(g.ID), IpPermissions: sdkPerms(missing)}); err != nil {
			return calls, wrap(err, "authorize ingress %v on %s", missing, g.ID)
		}
		calls = append(calls, fmt.Sprintf("ec2:AuthorizeSecurityGroupIngress GroupId=%s %v", g.ID, missing))
	}
	return calls, nil
}

// verifySecurityGroup checks that every ENI carries only the per-case
// group and that it no longer allows the traffic to the target.
func (b *Backend) verifySecurityGroup(ctx context.Context, a remediate.Action) (remediate.Check, error) {
	inst, err := b.describeInstance(ctx, a.InstanceID)
	if err != nil {
		return remediate.Check{}, err
	}
	name := caseGroupName(caseOf(a.Key, remediate.KindSecurityGroup), inst.ID)
	g, exists, err := b.findGroup(ctx, name, inst.VPCID)
	if err != nil || !exists {
		return remediate.Check{Detail: fmt.Sprintf("no group %s", name)}, err
	}
	for _, e := range inst.ENIs {
		if !sameSet(e.Groups, []string{g.ID}) {
			return remediate.Check{Detail: fmt.Sprintf("%s carries %v, not only %s", e.ID, e.Groups, g.ID)}, nil
		}
	}
	t := traffic{a.Protocol, a.Port}
	if allows(g.Egress, t, a.Target.Addr()) {
		return remediate.Check{Detail: fmt.Sprintf("%s still allows %s to %s", g.ID, t, a.Target)}, nil
	}
	return remediate.Check{Holds: true, Detail: fmt.Sprintf("every ENI of %s carries only %s, which allows no %s to %s", inst.ID, g.ID, t, a.Target)}, nil
}

// undoSecurityGroup puts the original groups back on the ENIs that still
// carry only the per-case group, then deletes it. The per-case group
// serves every action of the instance in the case, so the first Undo
// undoes them all and the others find nothing left.
func (b *Backend) undoSecurityGroup(ctx context.Context, c remediate.Change) error {
	var before sgBefore
	if len(c.Before) > 0 {
		if err := json.Unmarshal(c.Before, &before); err != nil {
			return permanentf("undo %s: bad Before record: %v", c.Key, err)
		}
	}
	var after sgAfter
	if len(c.After) > 0 && json.Unmarshal(c.After, &after) == nil && after.DryRun {
		return nil
	}
	instID := strings.SplitN(strings.TrimPrefix(c.Key, caseOf(c.Key, remediate.KindSecurityGroup)+":"+string(remediate.KindSecurityGroup)+":"), ":", 2)[0]
	inst, err := b.describeInstance(ctx, instID)
	if err != nil && !isNotFound(err) {
		return err
	}
	name := caseGroupName(caseOf(c.Key, remediate.KindSecurityGroup), instID)
	g, exists, err := b.findGroup(ctx, name, inst.VPCID)
	if err != nil || !exists {
		return err // nothing left to undo
	}
	original := before.ENIs
	if len(original) == 0 {
		tags, err := b.resourceTags(ctx, g.ID)
		if err != nil {
			return err
		}
		original = enisFromTags(tags)
	}
	if err := b.restore(ctx, inst, []string{g.ID}, original); err != nil {
		return err
	}
	_, err = b.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(g.ID)})
	if isNotFound(err) {
		return nil
	}
	return wrap(err, "delete security group %s", g.ID)
}
