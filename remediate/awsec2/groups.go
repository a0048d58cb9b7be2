package awsec2

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The tags this package leaves on what it changes. They let Apply after
// a crash, and Undo from another process without the recorded Change,
// find the original groups again.
const (
	tagCase        = "abuse-responder:case"     // the case that made the change
	tagInstance    = "abuse-responder:instance" // on a per-case group: whose copy it is
	tagRemoved     = "abuse-responder:removed"  // on a per-case group: the traffic taken out, "tcp/22 udp/53"
	tagGroupsOfENI = "abuse-responder:groups:"  // + ENI id: the ENI's groups before, "sg-a,sg-b"
)

// group is a security group's rules.
type group struct {
	ID, Name, VPCID string
	Ingress, Egress []perm
}

func groupOf(g types.SecurityGroup) group {
	return group{ID: aws.ToString(g.GroupId), Name: aws.ToString(g.GroupName), VPCID: aws.ToString(g.VpcId),
		Ingress: permsOf(g.IpPermissions), Egress: permsOf(g.IpPermissionsEgress)}
}

// describeGroups reads the groups with these ids.
func (b *Backend) describeGroups(ctx context.Context, ids []string) ([]group, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []group
	p := ec2.NewDescribeSecurityGroupsPaginator(b.ec2, &ec2.DescribeSecurityGroupsInput{GroupIds: ids})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap(err, "describe security groups %v", ids)
		}
		for _, g := range page.SecurityGroups {
			out = append(out, groupOf(g))
		}
	}
	return out, nil
}

// findGroup looks a group up by name in a VPC; ok is false when there is
// none.
func (b *Backend) findGroup(ctx context.Context, name, vpc string) (group, bool, error) {
	out, err := b.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("group-name"), Values: []string{name}},
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
	}})
	if err != nil {
		return group{}, false, wrap(err, "find security group %s in %s", name, vpc)
	}
	for _, g := range out.SecurityGroups {
		if aws.ToString(g.GroupName) == name {
			return groupOf(g), true, nil
		}
	}
	return group{}, false, nil
}

// enisTags records each ENI's groups as tags.
func enisTags(enis map[string][]string) map[string]string {
	out := map[string]string{}
	for id, groups := range enis {
		out[tagGroupsOfENI+id] = strings.Join(groups, ",")
	}
	return out
}

// enisFromTags reads back what enisTags wrote.
func enisFromTags(tags map[string]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range tags {
		if id, ok := strings.CutPrefix(k, tagGroupsOfENI); ok && v != "" {
			out[id] = strings.Split(v, ",")
		}
	}
	return out
}

// enisOf maps the instance's ENIs to their current groups.
func enisOf(inst instance) map[string][]string {
	out := map[string][]string{}
	for _, e := range inst.ENIs {
		if e.ID != "" {
			out[e.ID] = slices.Clone(e.Groups)
		}
	}
	return out
}

// allGroups lists every group of the ENIs, each once, sorted.
func allGroups(enis map[string][]string) []string {
	var out []string
	for _, gs := range enis {
		for _, g := range gs {
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	sort.Strings(out)
	return out
}

// sameSet reports whether two group lists hold the same groups.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// swap puts groups on every ENI of enis that does not have exactly them;
// it reports the calls made.
func (b *Backend) swap(ctx context.Context, inst instance, groups []string) ([]string, error) {
	var calls []string
	for _, e := range inst.ENIs {
		if e.ID == "" || sameSet(e.Groups, groups) {
			continue
		}
		if err := b.setGroups(ctx, inst, e.ID, groups); err != nil {
			return calls, err
		}
		calls = append(calls, setGroupsCall(inst, e.ID, groups))
	}
	return calls, nil
}

// restore puts each ENI's original groups back, but only on ENIs that
// still carry exactly ours: an ENI someone has changed since is theirs.
func (b *Backend) restore(ctx context.Context, inst instance, ours []string, original map[string][]string) error {
	for _, e := range inst.ENIs {
		orig, known := original[e.ID]
		if !known || !sameSet(e.Groups, ours) {
			continue
		}
		if err := b.setGroups(ctx, inst, e.ID, orig); err != nil {
			return err
		}
	}
	return nil
}
