package cloud

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// NetworkACL is a subnet's network ACL.
type NetworkACL struct {
	ID            string     `json:"id"`
	IsDefault     bool       `json:"default"`
	Entries       []ACLEntry `json:"entries"`
	AssociationID string     `json:"association_id"` // the subnet's association, which ReplaceNetworkAclAssociation takes
}

// ACLEntry is one numbered rule of a network ACL. Protocol is a name
// ("all", "tcp", "udp", "icmp", "icmpv6") or AWS's number for others.
type ACLEntry struct {
	RuleNumber int32  `json:"rule_number"`
	Egress     bool   `json:"egress"`
	Action     string `json:"action"` // "allow" or "deny"
	Protocol   string `json:"protocol"`
	CIDR       string `json:"cidr"`
	IPv6CIDR   string `json:"ipv6_cidr,omitempty"`
	FromPort   int32  `json:"from_port"` // 0 when the rule covers every port
	ToPort     int32  `json:"to_port"`
}

// SecurityGroup is one of the instance's security groups.
type SecurityGroup struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Egress  []SGRule `json:"egress"`
	Ingress []SGRule `json:"ingress"`
}

// SGRule is one IP permission. Protocol is named as for ACLEntry; the
// ports are -1 (or 0) when the rule covers every port.
type SGRule struct {
	Protocol  string   `json:"protocol"`
	FromPort  int32    `json:"from_port"`
	ToPort    int32    `json:"to_port"`
	CIDRs     []string `json:"cidrs"`
	IPv6CIDRs []string `json:"ipv6_cidrs,omitempty"`
	Groups    []string `json:"groups,omitempty"` // source or destination group ids
}

// ENI is one of the instance's network interfaces.
type ENI struct {
	ID         string   `json:"id"`
	PrivateIPs []string `json:"private_ips"` // the primary first
	PublicIP   string   `json:"public_ip"`
	SubnetID   string   `json:"subnet_id"`
	Groups     []string `json:"groups"`
}

// fill copies what DescribeInstances said.
func (i *Instance) fill(in *types.Instance) {
	i.Found = true
	i.InstanceID = aws.ToString(in.InstanceId)
	if in.State != nil {
		i.State = string(in.State.Name)
	}
	i.Tags = map[string]string{}
	for _, t := range in.Tags {
		i.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	i.LaunchTime = in.LaunchTime
	i.VPCID, i.SubnetID = aws.ToString(in.VpcId), aws.ToString(in.SubnetId)
	if in.IamInstanceProfile != nil {
		i.InstanceProfile = aws.ToString(in.IamInstanceProfile.Arn)
	}
	i.addPublicIP(aws.ToString(in.PublicIpAddress))
	for _, n := range in.NetworkInterfaces {
		e := ENI{ID: aws.ToString(n.NetworkInterfaceId), SubnetID: aws.ToString(n.SubnetId)}
		if n.Association != nil {
			e.PublicIP = aws.ToString(n.Association.PublicIp)
		}
		for _, p := range n.PrivateIpAddresses {
			e.PrivateIPs = append(e.PrivateIPs, aws.ToString(p.PrivateIpAddress))
			if p.Association != nil {
				i.addPublicIP(aws.ToString(p.Association.PublicIp))
			}
		}
		if len(e.PrivateIPs) == 0 && n.PrivateIpAddress != nil {
			e.PrivateIPs = []string{*n.PrivateIpAddress}
		}
		for _, g := range n.Groups {
			e.Groups = append(e.Groups, aws.ToString(g.GroupId))
		}
		i.addENI(e)
	}
}

func (i *Instance) addENI(e ENI) {
	i.ENIs = append(i.ENIs, e)
	i.addPublicIP(e.PublicIP)
}

func (i *Instance) addPublicIP(ip string) {
	if ip != "" && !slices.Contains(i.PublicIPs, ip) {
		i.PublicIPs = append(i.PublicIPs, ip)
	}
}

// eniOf converts DescribeNetworkInterfaces' view of an interface.
func eniOf(n types.NetworkInterface) ENI {
	e := ENI{ID: aws.ToString(n.NetworkInterfaceId), SubnetID: aws.ToString(n.SubnetId)}
	if n.Association != nil {
		e.PublicIP = aws.ToString(n.Association.PublicIp)
	}
	for _, p := range n.PrivateIpAddresses {
		e.PrivateIPs = append(e.PrivateIPs, aws.ToString(p.PrivateIpAddress))
	}
	for _, g := range n.Groups {
		e.Groups = append(e.Groups, aws.ToString(g.GroupId))
	}
	return e
}

// gather adds the instance's interfaces (when DescribeInstances left them
// out), network ACL, security groups and SSM status. It goes on after a
// failure, so that one denied call still leaves the rest, and returns the
// failures joined.
func (c *Clients) gather(ctx context.Context, inst *Instance, in *types.Instance) error {
	var errs []error
	if len(inst.ENIs) == 0 {
		enis, err := c.interfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: filter("attachment.instance-id", inst.InstanceID)}, 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("describe interfaces of %s: %w", inst.InstanceID, err))
		}
		for _, n := range enis {
			inst.addENI(eniOf(n))
		}
	}

	acl, err := c.networkACL(ctx, inst.VPCID, inst.SubnetID)
	if err != nil {
		errs = append(errs, fmt.Errorf("network ACL of %s: %w", inst.SubnetID, err))
	}
	inst.NetworkACL = acl

	var groupIDs []string
	for _, g := range in.SecurityGroups {
		groupIDs = appendNew(groupIDs, aws.ToString(g.GroupId))
	}
	for _, e := range inst.ENIs {
		groupIDs = appendNew(groupIDs, e.Groups...)
	}
	if inst.SecurityGroups, err = c.securityGroups(ctx, groupIDs); err != nil {
		errs = append(errs, fmt.Errorf("security groups of %s: %w", inst.InstanceID, err))
	}

	if managed, err := c.ssmManaged(ctx, inst.InstanceID); err != nil {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
		} else {
			// Not knowing SSM only removes one way to look inside the
			// instance; the analysis goes on.
			inst.addNote("SSM status unknown: " + ssmReason(err))
		}
	} else {
		inst.SSMManaged = &managed
	}
	return errors.Join(errs...)
}

// ssmReason says briefly why the SSM call failed: the SDK's full error
// repeats the operation and the response body.
func ssmReason(err error) string {
	var re *awshttp.ResponseError
	switch {
	case IsAccessDenied(err):
		return "access denied"
	case errorCode(err) != "":
		return errorCode(err)
	case errors.As(err, &re):
		return fmt.Sprintf("HTTP %d from DescribeInstanceInformation", re.HTTPStatusCode())
	}
	return err.Error()
}

// networkACL returns the ACL associated with the subnet, else the VPC's
// default ACL (which AWS uses for a subnet without an association).
func (c *Clients) networkACL(ctx context.Context, vpcID, subnetID string) (*NetworkACL, error) {
	if subnetID == "" {
		return nil, nil // EC2-Classic or a terminated instance: no subnet
	}
	a, err := c.firstACL(ctx, filter("association.subnet-id", subnetID))
	if err == nil && a == nil && vpcID != "" {
		a, err = c.firstACL(ctx, append(filter("vpc-id", vpcID), filter("default", "true")...))
	}
	if err != nil || a == nil {
		return nil, err
	}
	acl := &NetworkACL{ID: aws.ToString(a.NetworkAclId), IsDefault: aws.ToBool(a.IsDefault)}
	for _, as := range a.Associations {
		if aws.ToString(as.SubnetId) == subnetID {
			acl.AssociationID = aws.ToString(as.NetworkAclAssociationId)
		}
	}
	for _, e := range a.Entries {
		entry := ACLEntry{
			RuleNumber: aws.ToInt32(e.RuleNumber), Egress: aws.ToBool(e.Egress), Action: string(e.RuleAction),
			Protocol: ProtocolName(aws.ToString(e.Protocol)), CIDR: aws.ToString(e.CidrBlock), IPv6CIDR: aws.ToString(e.Ipv6CidrBlock),
		}
		if e.PortRange != nil {
			entry.FromPort, entry.ToPort = aws.ToInt32(e.PortRange.From), aws.ToInt32(e.PortRange.To)
		}
		acl.Entries = append(acl.Entries, entry)
	}
	// AWS evaluates entries by rule number; keep them in that order.
	sort.SliceStable(acl.Entries, func(x, y int) bool { return acl.Entries[x].RuleNumber < acl.Entries[y].RuleNumber })
	return acl, nil
}

func (c *Clients) firstACL(ctx context.Context, fs []types.Filter) (*types.NetworkAcl, error) {
	p := ec2.NewDescribeNetworkAclsPaginator(c.EC2, &ec2.DescribeNetworkAclsInput{Filters: fs})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		if len(out.NetworkAcls) > 0 {
			return &out.NetworkAcls[0], nil
		}
	}
	return nil, nil
}

// securityGroups describes the groups, in the order of ids.
func (c *Clients) securityGroups(ctx context.Context, ids []string) ([]SecurityGroup, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	byID := map[string]SecurityGroup{}
	p := ec2.NewDescribeSecurityGroupsPaginator(c.EC2, &ec2.DescribeSecurityGroupsInput{GroupIds: ids})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, g := range out.SecurityGroups {
			byID[aws.ToString(g.GroupId)] = SecurityGroup{
				ID: aws.ToString(g.GroupId), Name: aws.ToString(g.GroupName),
				Egress: sgRules(g.IpPermissionsEgress), Ingress: sgRules(g.IpPermissions),
			}
		}
	}
	var groups []SecurityGroup
	for _, id := range ids {
		if g, ok := byID[id]; ok {
			groups = append(groups, g)
		}
	}
	return groups, nil
}

func sgRules(perms []types.IpPermission) []SGRule {
	var rules []SGRule
	for _, p := range perms {
		r := SGRule{Protocol: ProtocolName(aws.ToString(p.IpProtocol)), FromPort: aws.ToInt32(p.FromPort), ToPort: aws.ToInt32(p.ToPort)}
		for _, ip := range p.IpRanges {
			r.CIDRs = append(r.CIDRs, aws.ToString(ip.CidrIp))
		}
		for _, ip := range p.Ipv6Ranges {
			r.IPv6CIDRs = append(r.IPv6CIDRs, aws.ToString(ip.CidrIpv6))
		}
		for _, g := range p.UserIdGroupPairs {
			r.Groups = append(r.Groups, aws.ToString(g.GroupId))
		}
		rules = append(rules, r)
	}
	return rules
}

// ssmManaged reports whether the instance is registered with SSM.
func (c *Clients) ssmManaged(ctx context.Context, id string) (bool, error) {
	p := ssm.NewDescribeInstanceInformationPaginator(c.SSM, &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{id}}},
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return false, fmt.Errorf("describe SSM instance information for %s: %w", id, err)
		}
		if len(out.InstanceInformationList) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// ProtocolName is an AWS protocol as people read it: "all" for "-1",
// the name of a number AWS writes in ACL entries, security group rules
// and flow logs ("6" is "tcp"), else p itself.
func ProtocolName(p string) string {
	switch p {
	case "-1", "all":
		return "all"
	case "6":
		return "tcp"
	case "17":
		return "udp"
	case "1":
		return "icmp"
	case "58":
		return "icmpv6"
	}
	return p // a name already ("tcp", "udp", "icmp", "icmpv6") or another number
}

func appendNew(list []string, vs ...string) []string {
	for _, v := range vs {
		if v != "" && !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}
