package awstest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestFakeNetworkACLEntries(t *testing.T) {
	f := NewEC2Fake(t)
	f.AddNetworkACL(NetworkACL{ID: "acl-1", VPCID: "vpc-1", Entries: []ACLEntry{
		{RuleNumber: 100, Egress: true, Action: "allow", Protocol: "-1", CIDR: "0.0.0.0/0"},
		{RuleNumber: 32767, Egress: true, Action: "deny", Protocol: "-1", CIDR: "0.0.0.0/0"},
	}})
	client := ec2.NewFromConfig(Config(t, f.URL()))
	ctx := context.Background()
	entry := func(n int32, dry bool) *ec2.CreateNetworkAclEntryInput {
		return &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String("acl-1"), RuleNumber: aws.Int32(n), Egress: aws.Bool(true),
			RuleAction: types.RuleActionDeny, Protocol: aws.String("6"), CidrBlock: aws.String("203.0.113.5/32"),
			PortRange: &types.PortRange{From: aws.Int32(22), To: aws.Int32(22)}, DryRun: aws.Bool(dry)}
	}
	if _, err := client.CreateNetworkAclEntry(ctx, entry(40, true)); code(err) != "DryRunOperation" {
		t.Fatalf("dry run = %v, want DryRunOperation", err)
	}
	if acl, _ := f.NetworkACL("acl-1"); len(acl.Entries) != 2 {
		t.Fatalf("a dry run changed the ACL: %+v", acl.Entries)
	}
	if _, err := client.CreateNetworkAclEntry(ctx, entry(40, false)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateNetworkAclEntry(ctx, entry(40, false)); code(err) != "NetworkAclEntryAlreadyExists" {
		t.Errorf("same number again = %v, want NetworkAclEntryAlreadyExists", err)
	}
	f.SetNACLQuota(2)
	if _, err := client.CreateNetworkAclEntry(ctx, entry(41, false)); code(err) != "NetworkAclEntryLimitExceeded" {
		t.Errorf("over the quota = %v, want NetworkAclEntryLimitExceeded", err)
	}
	f.BeforeNext("DeleteNetworkAclEntry", func() {
		f.AddNetworkACLEntry("acl-1", ACLEntry{RuleNumber: 50, Egress: true, Action: "deny", Protocol: "-1", CIDR: "192.0.2.1/32"})
	})
	del := &ec2.DeleteNetworkAclEntryInput{NetworkAclId: aws.String("acl-1"), RuleNumber: aws.Int32(40), Egress: aws.Bool(true)}
	if _, err := client.DeleteNetworkAclEntry(ctx, del); err != nil {
		t.Fatal(err)
	}
	acl, _ := f.NetworkACL("acl-1")
	var numbers []int32
	for _, e := range acl.Entries {
		numbers = append(numbers, e.RuleNumber)
	}
	if !slices.Equal(numbers, []int32{100, 32767, 50}) {
		t.Errorf("entries = %v, want 100 32767 50 (40 deleted, 50 added by the hook)", numbers)
	}
	if _, err := client.DeleteNetworkAclEntry(ctx, del); code(err) != "InvalidNetworkAclEntry.NotFound" {
		t.Errorf("delete twice = %v, want InvalidNetworkAclEntry.NotFound", err)
	}
	if got := f.Calls(); len(got) != 6 || got[0] != "CreateNetworkAclEntry" || got[5] != "DeleteNetworkAclEntry" {
		t.Errorf("Calls = %v", got)
	}
}

func TestFakeSecurityGroupsAndTags(t *testing.T) {
	f := NewEC2Fake(t)
	f.AddSecurityGroup(SecurityGroup{ID: "sg-web", Name: "web", VPCID: "vpc-1"})
	f.AddInstance(Instance{ID: "i-1", VPCID: "vpc-1", Groups: []string{"sg-web"}})
	f.AddENI(ENI{ID: "eni-1", VPCID: "vpc-1", InstanceID: "i-1", Groups: []string{"sg-web"}},
		ENI{ID: "eni-2", VPCID: "vpc-1", InstanceID: "i-1", Groups: []string{"sg-web"}})
	client := ec2.NewFromConfig(Config(t, f.URL()))
	ctx := context.Background()

	out, err := client.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("copy"), Description: aws.String("d"),
		VpcId: aws.String("vpc-1"), TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup,
			Tags: []types.Tag{{Key: aws.String("case"), Value: aws.String("c1")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.GroupId)
	perm := []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
		IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}, Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}}}
	all := []types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}
	if _, err := client.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: &id, IpPermissions: all}); err != nil {
		t.Fatalf("revoke the default egress: %v", err)
	}
	if _, err := client.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: &id, IpPermissions: perm}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &id, IpPermissions: perm}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: &id, IpPermissions: perm}); code(err) != "InvalidPermission.Duplicate" {
		t.Errorf("authorize twice = %v, want InvalidPermission.Duplicate", err)
	}
	g, _ := f.SecurityGroupByID(id)
	if len(g.Egress) != 2 || len(g.Ingress) != 2 {
		t.Errorf("group = %+v, want 2 egress and 2 ingress rules", g)
	}

	if _, err := client.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String("eni-2"),
		Groups: []string{id}, DryRun: aws.Bool(true)}); code(err) != "DryRunOperation" {
		t.Errorf("dry-run modify = %v", err)
	}
	if _, err := client.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String("eni-2"), Groups: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if in, _ := f.InstanceByID("i-1"); !slices.Equal(in.Groups, []string{"sg-web", id}) {
		t.Errorf("instance groups = %v, want the ENIs' union", in.Groups)
	}
	if _, err := client.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: &id}); code(err) != "DependencyViolation" {
		t.Errorf("delete an attached group = %v, want DependencyViolation", err)
	}
	if _, err := client.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String("i-1"), Groups: []string{"sg-web"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String("eni-2"), Groups: []string{"sg-web"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: &id}); err != nil {
		t.Errorf("delete a detached group: %v", err)
	}

	if _, err := client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"i-1"}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := client.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []types.Filter{{Name: aws.String("resource-id"), Values: []string{"i-1"}}}})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Value) != "v" {
		t.Fatalf("DescribeTags = %+v, %v", tags, err)
	}
	if _, err := client.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{"i-1"}, Tags: []types.Tag{{Key: aws.String("k")}}}); err != nil {
		t.Fatal(err)
	}
	if in, _ := f.InstanceByID("i-1"); len(in.Tags) != 0 {
		t.Errorf("tags after DeleteTags = %v", in.Tags)
	}
}
