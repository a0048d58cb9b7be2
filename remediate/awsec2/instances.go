package awsec2

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/abuse-responder/abuse-responder/remediate"
)

// instance is what the plans need to know about an implicated instance.
type instance struct {
	ID    string
	VPCID string
	Tags  map[string]string
	ENIs  []eni // sorted by ID, so that plans and records are stable
	// Volumes are the attached EBS volumes' IDs, sorted, for the forensic
	// snapshots (snapshot.go).
	Volumes []string
}

// eni is one attached network interface and its security groups.
type eni struct {
	ID       string   `json:"id"`
	SubnetID string   `json:"-"`
	Groups   []string `json:"groups"`
}

// subnets are the instance's subnets, each once, in ENI order.
func (in instance) subnets() []string {
	var out []string
	for _, e := range in.ENIs {
		if e.SubnetID != "" && !slices.Contains(out, e.SubnetID) {
			out = append(out, e.SubnetID)
		}
	}
	return out
}

// instances describes in.Instances that belong to this backend's region.
// Each protected instance (Policy.ProtectTag) becomes a Refusal.
func (b *Backend) instances(ctx context.Context, in remediate.Input) ([]instance, []remediate.Refusal, error) {
	var out []instance
	var refusals []remediate.Refusal
	for _, ref := range in.Instances {
		if b.region != "" && ref.Region != "" && ref.Region != b.region {
			continue // another Backend's instance
		}
		inst, err := b.describeInstance(ctx, ref.ID)
		if err != nil {
			return nil, nil, err
		}
		if tag := in.Policy.ProtectTag; tag != "" {
			if _, protected := inst.Tags[tag]; protected {
				refusals = append(refusals, remediate.Refusal{
					What:   inst.ID,
					Reason: fmt.Sprintf("instance %s carries the protect tag %q: nothing is changed automatically, a human decides", inst.ID, tag),
					Stop:   true,
				})
				continue
			}
		}
		out = append(out, inst)
	}
	return out, refusals, nil
}

// describeInstance reads the instance, its tags and its interfaces.
func (b *Backend) describeInstance(ctx context.Context, id string) (instance, error) {
	out, err := b.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return instance{}, wrap(err, "describe instance %s", id)
	}
	var found *types.Instance
	for _, r := range out.Reservations {
		for i := range r.Instances {
			if aws.ToString(r.Instances[i].InstanceId) == id {
				found = &r.Instances[i]
			}
		}
	}
	if found == nil {
		return instance{}, permanentf("describe instance %s: not in the answer", id)
	}
	inst := instance{ID: id, VPCID: aws.ToString(found.VpcId), Tags: map[string]string{}}
	for _, t := range found.Tags {
		inst.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for _, m := range found.BlockDeviceMappings {
		if m.Ebs != nil && aws.ToString(m.Ebs.VolumeId) != "" {
			inst.Volumes = append(inst.Volumes, aws.ToString(m.Ebs.VolumeId))
		}
	}
	sort.Strings(inst.Volumes)
	// DescribeNetworkInterfaces rather than the instance's own interface
	// list: it is what ModifyNetworkInterfaceAttribute changes, and every
	// double answers it the same way.
	enis, err := b.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{id}}},
	})
	if err != nil {
		return instance{}, wrap(err, "describe network interfaces of %s", id)
	}
	for _, n := range enis.NetworkInterfaces {
		e := eni{ID: aws.ToString(n.NetworkInterfaceId), SubnetID: aws.ToString(n.SubnetId)}
		for _, g := range n.Groups {
			e.Groups = append(e.Groups, aws.ToString(g.GroupId))
		}
		inst.ENIs = append(inst.ENIs, e)
	}
	if len(inst.ENIs) == 0 && found.SubnetId != nil {
		// No interface listed: fall back to the instance's subnet and
		// groups (enough for a network ACL; the group swaps need ENIs).
		e := eni{SubnetID: aws.ToString(found.SubnetId)}
		for _, g := range found.SecurityGroups {
			e.Groups = append(e.Groups, aws.ToString(g.GroupId))
		}
		inst.ENIs = append(inst.ENIs, e)
	}
	if len(inst.ENIs) == 1 && len(found.SecurityGroups) > 0 {
		// One interface: its groups are the instance's. Read them there,
		// where ModifyInstanceAttribute writes them (moto keeps the
		// interface's launch groups apart and shows the union).
		inst.ENIs[0].Groups = nil
		for _, g := range found.SecurityGroups {
			inst.ENIs[0].Groups = append(inst.ENIs[0].Groups, aws.ToString(g.GroupId))
		}
	}
	sort.Slice(inst.ENIs, func(i, j int) bool { return inst.ENIs[i].ID < inst.ENIs[j].ID })
	return inst, nil
}

// setGroups puts exactly groups on one interface of inst. An instance
// with a single interface is changed with ModifyInstanceAttribute
// (Groups), which AWS documents for it and which also keeps the
// instance's own group list right in emulators such as moto; with more
// interfaces AWS requires ModifyNetworkInterfaceAttribute per interface.
func (b *Backend) setGroups(ctx context.Context, inst instance, eniID string, groups []string) error {
	var err error
	if len(inst.ENIs) == 1 {
		_, err = b.ec2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(inst.ID), Groups: groups})
	} else {
		_, err = b.ec2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(eniID), Groups: groups,
		})
	}
	return wrap(err, "set security groups %v on %s of %s", groups, eniID, inst.ID)
}

// setGroupsCall writes the call setGroups makes.
func setGroupsCall(inst instance, eniID string, groups []string) string {
	s := "ec2:ModifyNetworkInterfaceAttribute NetworkInterfaceId=" + eniID
	param := "SecurityGroupId"
	if len(inst.ENIs) == 1 {
		s, param = "ec2:ModifyInstanceAttribute InstanceId="+inst.ID, "GroupId"
	}
	for i, g := range groups {
		s += fmt.Sprintf(" %s.%d=%s", param, i+1, g)
	}
	return s
}

// resourceTags reads the tags of one resource (a security group; the
// instances' tags come with DescribeInstances).
func (b *Backend) resourceTags(ctx context.Context, id string) (map[string]string, error) {
	out := map[string]string{}
	p := ec2.NewDescribeTagsPaginator(b.ec2, &ec2.DescribeTagsInput{
		Filters: []types.Filter{{Name: aws.String("resource-id"), Values: []string{id}}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap(err, "describe tags of %s", id)
		}
		for _, t := range page.Tags {
			out[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return out, nil
}

func tagsOf(m map[string]string) []types.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []types.Tag
	for _, k := range keys {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}
