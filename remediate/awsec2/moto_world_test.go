package awsec2_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/abuse-responder/abuse-responder/internal/awstest"
	"github.com/abuse-responder/abuse-responder/remediate/awsec2"
)

// motoWorld is an account in moto with one instance as a notice finds
// it: in a subnet with its own network ACL (egress allows at 100 and
// 110), in a security group with egress rules, with an Elastic IP; and
// an empty isolation group for quarantine.
type motoWorld struct {
	ec2     *ec2.Client
	backend *awsec2.Backend

	vpc, subnet, acl, group, quarantine string
	instance, eni                       string
}

func newMotoWorld(t *testing.T) *motoWorld {
	t.Helper()
	moto := awstest.SharedMoto(t)
	awstest.Env(t)
	ctx := context.Background()
	w := &motoWorld{ec2: ec2.NewFromConfig(awstest.Config(t, moto.URL()))}
	var err error
	w.backend, err = awsec2.New(ctx, awsec2.Options{Region: awstest.Region, EndpointURL: moto.URL(), MaxAttempts: 1, RuleBand: band})
	fatalIf(t, "New", err)

	vpc, err := w.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	fatalIf(t, "CreateVpc", err)
	w.vpc = aws.ToString(vpc.Vpc.VpcId)
	subnet, err := w.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: &w.vpc, CidrBlock: aws.String("10.0.1.0/24")})
	fatalIf(t, "CreateSubnet", err)
	w.subnet = aws.ToString(subnet.Subnet.SubnetId)

	acl, err := w.ec2.CreateNetworkAcl(ctx, &ec2.CreateNetworkAclInput{VpcId: &w.vpc})
	fatalIf(t, "CreateNetworkAcl", err)
	w.acl = aws.ToString(acl.NetworkAcl.NetworkAclId)
	for _, e := range []ec2.CreateNetworkAclEntryInput{
		{RuleNumber: aws.Int32(110), Protocol: aws.String("6"), PortRange: &types.PortRange{From: aws.Int32(443), To: aws.Int32(443)}},
		{RuleNumber: aws.Int32(100), Protocol: aws.String("-1")},
	} {
		e.NetworkAclId, e.Egress, e.RuleAction, e.CidrBlock = &w.acl, aws.Bool(true), types.RuleActionAllow, aws.String("0.0.0.0/0")
		_, err = w.ec2.CreateNetworkAclEntry(ctx, &e)
		fatalIf(t, "CreateNetworkAclEntry", err)
	}
	// A new subnet starts on the VPC's default ACL; move it to ours.
	def, err := w.ec2.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{
		Filters: []types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{w.subnet}}},
	})
	fatalIf(t, "DescribeNetworkAcls", err)
	var assoc string
	for _, a := range def.NetworkAcls[0].Associations {
		if aws.ToString(a.SubnetId) == w.subnet {
			assoc = aws.ToString(a.NetworkAclAssociationId)
		}
	}
	_, err = w.ec2.ReplaceNetworkAclAssociation(ctx, &ec2.ReplaceNetworkAclAssociationInput{AssociationId: &assoc, NetworkAclId: &w.acl})
	fatalIf(t, "ReplaceNetworkAclAssociation", err)

	w.group = w.createGroup(t, "web")
	_, err = w.ec2.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{
		GroupId: &w.group,
		IpPermissions: []types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
			IpRanges: []types.IpRange{{CidrIp: aws.String("203.0.113.0/24")}},
		}},
	})
	fatalIf(t, "AuthorizeSecurityGroupEgress", err)
	_, err = w.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: &w.group,
		IpPermissions: []types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
			IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}},
		}},
	})
	fatalIf(t, "AuthorizeSecurityGroupIngress", err)
	w.quarantine = w.createGroup(t, "quarantine")

	images, err := w.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	fatalIf(t, "DescribeImages", err)
	if len(images.Images) == 0 {
		t.Fatal("moto has no amazon images to launch")
	}
	run, err := w.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: images.Images[0].ImageId, InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: &w.subnet, SecurityGroupIds: []string{w.group},
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeInstance,
			Tags:         []types.Tag{{Key: aws.String("Name"), Value: aws.String("web-1")}},
		}},
	})
	fatalIf(t, "RunInstances", err)
	w.instance = aws.ToString(run.Instances[0].InstanceId)
	alloc, err := w.ec2.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc})
	fatalIf(t, "AllocateAddress", err)
	_, err = w.ec2.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: &w.instance})
	fatalIf(t, "AssociateAddress", err)
	enis, err := w.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{w.instance}}},
	})
	fatalIf(t, "DescribeNetworkInterfaces", err)
	if len(enis.NetworkInterfaces) != 1 {
		t.Fatalf("instance %s has %d interfaces, want 1", w.instance, len(enis.NetworkInterfaces))
	}
	w.eni = aws.ToString(enis.NetworkInterfaces[0].NetworkInterfaceId)
	return w
}

func (w *motoWorld) createGroup(t *testing.T, name string) string {
	t.Helper()
	g, err := w.ec2.CreateSecurityGroup(context.Background(), &ec2.CreateSecurityGroupInput{
		GroupName: aws.String(name), Description: aws.String(name), VpcId: &w.vpc,
	})
	fatalIf(t, "CreateSecurityGroup", err)
	return aws.ToString(g.GroupId)
}

// aclJSON is the ACL as DescribeNetworkAcls shows it, for byte-for-byte
// comparisons.
func (w *motoWorld) aclJSON(t *testing.T) string {
	t.Helper()
	out, err := w.ec2.DescribeNetworkAcls(context.Background(), &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{w.acl}})
	fatalIf(t, "DescribeNetworkAcls", err)
	b, err := json.Marshal(out.NetworkAcls)
	fatalIf(t, "marshal", err)
	return string(b)
}

// eniGroups is the security groups of the instance's single interface,
// as DescribeInstances reports them. (moto's DescribeNetworkInterfaces
// shows the union of the interface's launch groups and the instance's,
// so it never shows a swap.)
func (w *motoWorld) eniGroups(t *testing.T) []string {
	t.Helper()
	out, err := w.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{w.instance}})
	fatalIf(t, "DescribeInstances", err)
	var ids []string
	for _, g := range out.Reservations[0].Instances[0].SecurityGroups {
		ids = append(ids, aws.ToString(g.GroupId))
	}
	return ids
}

func fatalIf(t *testing.T, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
}

// instanceTags is the instance's tags as DescribeInstances shows them.
func (w *motoWorld) instanceTags(t *testing.T) map[string]string {
	t.Helper()
	out, err := w.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{w.instance}})
	fatalIf(t, "DescribeInstances", err)
	tags := map[string]string{}
	for _, tg := range out.Reservations[0].Instances[0].Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return tags
}
