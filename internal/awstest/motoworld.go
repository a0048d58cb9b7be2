package awstest

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// MotoWorld is an account in moto (SharedMoto, reset) with one instance
// set up as an abuse notice would find it: a VPC 10.0.0.0/16; a subnet
// 10.0.1.0/24 on a network ACL of its own, with egress allows to
// 0.0.0.0/0 at 100 (every protocol) and 110 (tcp 443); a security group
// "web" allowing tcp 443 out to 203.0.113.0/24; the instance "web-1" in
// them; and an Elastic IP on it.
type MotoWorld struct {
	Moto *Moto
	EC2  *ec2.Client

	VPC, Subnet, ACL, Group string
	Instance, ENI, EIP      string
	Image                   string // what RunInstance launches

	tags map[string]string
}

// MotoWorldOptions configures NewMotoWorld.
type MotoWorldOptions struct {
	// Tags are the tags of the instances besides Name.
	Tags map[string]string
}

// NewMotoWorld builds the world in the test binary's shared moto, with
// Env's credentials.
func NewMotoWorld(t testing.TB, opts MotoWorldOptions) *MotoWorld {
	t.Helper()
	moto := SharedMoto(t)
	Env(t)
	ctx := context.Background()
	w := &MotoWorld{Moto: moto, EC2: ec2.NewFromConfig(Config(t, moto.URL())), tags: opts.Tags}

	vpc, err := w.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	setupFatal(t, "CreateVpc", err)
	w.VPC = aws.ToString(vpc.Vpc.VpcId)
	subnet, err := w.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: &w.VPC, CidrBlock: aws.String("10.0.1.0/24")})
	setupFatal(t, "CreateSubnet", err)
	w.Subnet = aws.ToString(subnet.Subnet.SubnetId)

	acl, err := w.EC2.CreateNetworkAcl(ctx, &ec2.CreateNetworkAclInput{VpcId: &w.VPC})
	setupFatal(t, "CreateNetworkAcl", err)
	w.ACL = aws.ToString(acl.NetworkAcl.NetworkAclId)
	for _, e := range []ec2.CreateNetworkAclEntryInput{
		{RuleNumber: aws.Int32(110), Protocol: aws.String("6"), PortRange: &types.PortRange{From: aws.Int32(443), To: aws.Int32(443)}},
		{RuleNumber: aws.Int32(100), Protocol: aws.String("-1")},
	} {
		e.NetworkAclId, e.Egress, e.RuleAction, e.CidrBlock = &w.ACL, aws.Bool(true), types.RuleActionAllow, aws.String("0.0.0.0/0")
		_, err = w.EC2.CreateNetworkAclEntry(ctx, &e)
		setupFatal(t, "CreateNetworkAclEntry", err)
	}
	// A new subnet starts on the VPC's default ACL; move it to ours.
	def, err := w.EC2.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{
		Filters: []types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{w.Subnet}}},
	})
	setupFatal(t, "DescribeNetworkAcls", err)
	var assoc string
	for _, a := range def.NetworkAcls[0].Associations {
		if aws.ToString(a.SubnetId) == w.Subnet {
			assoc = aws.ToString(a.NetworkAclAssociationId)
		}
	}
	_, err = w.EC2.ReplaceNetworkAclAssociation(ctx, &ec2.ReplaceNetworkAclAssociationInput{AssociationId: &assoc, NetworkAclId: &w.ACL})
	setupFatal(t, "ReplaceNetworkAclAssociation", err)

	w.Group = w.CreateGroup(t, "web", "web servers")
	_, err = w.EC2.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{
		GroupId: &w.Group,
		IpPermissions: []types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
			IpRanges: []types.IpRange{{CidrIp: aws.String("203.0.113.0/24")}},
		}},
	})
	setupFatal(t, "AuthorizeSecurityGroupEgress", err)

	images, err := w.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	setupFatal(t, "DescribeImages", err)
	if len(images.Images) == 0 {
		t.Fatal("moto has no amazon images to launch")
	}
	w.Image = aws.ToString(images.Images[0].ImageId)
	w.Instance = w.RunInstance(t, "web-1")

	alloc, err := w.EC2.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc})
	setupFatal(t, "AllocateAddress", err)
	w.EIP = aws.ToString(alloc.PublicIp)
	_, err = w.EC2.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: &w.Instance})
	setupFatal(t, "AssociateAddress", err)

	enis, err := w.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{w.Instance}}},
	})
	setupFatal(t, "DescribeNetworkInterfaces", err)
	if len(enis.NetworkInterfaces) != 1 {
		t.Fatalf("instance %s has %d interfaces, want 1", w.Instance, len(enis.NetworkInterfaces))
	}
	w.ENI = aws.ToString(enis.NetworkInterfaces[0].NetworkInterfaceId)
	return w
}

// CreateGroup creates a security group in the world's VPC.
func (w *MotoWorld) CreateGroup(t testing.TB, name, description string) string {
	t.Helper()
	g, err := w.EC2.CreateSecurityGroup(context.Background(), &ec2.CreateSecurityGroupInput{
		GroupName: aws.String(name), Description: aws.String(description), VpcId: &w.VPC,
	})
	setupFatal(t, "CreateSecurityGroup", err)
	return aws.ToString(g.GroupId)
}

// RunInstance launches an instance named name in the world's subnet and
// group, with the options' tags.
func (w *MotoWorld) RunInstance(t testing.TB, name string) string {
	t.Helper()
	tags := []types.Tag{{Key: aws.String("Name"), Value: aws.String(name)}}
	for _, k := range slices.Sorted(maps.Keys(w.tags)) {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(w.tags[k])})
	}
	out, err := w.EC2.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: &w.Image, InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: &w.Subnet, SecurityGroupIds: []string{w.Group},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}},
	})
	setupFatal(t, "RunInstances", err)
	return aws.ToString(out.Instances[0].InstanceId)
}

// setupFatal fails the test when a set-up call failed.
func setupFatal(t testing.TB, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("set-up %s: %v", call, err)
	}
}
