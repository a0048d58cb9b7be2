package cloud_test

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/abuse-responder/abuse-responder/analyze/cloud"
	"github.com/abuse-responder/abuse-responder/internal/awstest"
)

// One moto_server serves every test of the package; each test resets it.
func TestMain(m *testing.M) {
	code := m.Run()
	awstest.StopSharedMoto()
	os.Exit(code)
}

// motoWorld is an account in moto with one instance set up as a notice
// would find it: in a subnet with its own network ACL, a security group
// with egress rules, tags, and an Elastic IP.
type motoWorld struct {
	clients *cloud.Clients
	ec2     *ec2.Client
	logs    *cloudwatchlogs.Client

	vpc, subnet, acl, group string
	instance, eni, eip      string
	image                   string
}

func newMotoWorld(t *testing.T) *motoWorld {
	t.Helper()
	moto := awstest.SharedMoto(t)
	awstest.Env(t)
	ctx := context.Background()
	cfg := awstest.Config(t, moto.URL())
	w := &motoWorld{ec2: ec2.NewFromConfig(cfg), logs: cloudwatchlogs.NewFromConfig(cfg)}
	var err error
	// MaxAttempts 1: moto answers 500 for calls it lacks (SSM
	// DescribeInstanceInformation), and retrying those only slows the test.
	w.clients, err = cloud.NewClients(ctx, cloud.Options{Region: awstest.Region, EndpointURL: moto.URL(), MaxAttempts: 1})
	if err != nil {
		t.Fatalf("NewClients: %v", err)
	}

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
	_, err = w.ec2.ReplaceNetworkAclAssociation(ctx, &ec2.ReplaceNetworkAclAssociationInput{
		AssociationId: &assoc, NetworkAclId: &w.acl,
	})
	fatalIf(t, "ReplaceNetworkAclAssociation", err)

	group, err := w.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("web"), Description: aws.String("web servers"), VpcId: &w.vpc,
	})
	fatalIf(t, "CreateSecurityGroup", err)
	w.group = aws.ToString(group.GroupId)
	_, err = w.ec2.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{
		GroupId: &w.group,
		IpPermissions: []types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
			IpRanges: []types.IpRange{{CidrIp: aws.String("203.0.113.0/24")}},
		}},
	})
	fatalIf(t, "AuthorizeSecurityGroupEgress", err)

	images, err := w.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	fatalIf(t, "DescribeImages", err)
	if len(images.Images) == 0 {
		t.Fatal("moto has no amazon images to launch")
	}
	w.image = aws.ToString(images.Images[0].ImageId)
	w.instance = w.runInstance(t, "web-1")

	alloc, err := w.ec2.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc})
	fatalIf(t, "AllocateAddress", err)
	w.eip = aws.ToString(alloc.PublicIp)
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

// runInstance launches an instance in the world's subnet and group.
func (w *motoWorld) runInstance(t *testing.T, name string) string {
	t.Helper()
	out, err := w.ec2.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: &w.image, InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: &w.subnet, SecurityGroupIds: []string{w.group},
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeInstance,
			Tags:         []types.Tag{{Key: aws.String("Name"), Value: aws.String(name)}, {Key: aws.String("team"), Value: aws.String("web")}},
		}},
	})
	fatalIf(t, "RunInstances", err)
	return aws.ToString(out.Instances[0].InstanceId)
}

// fatalIf fails the test when a set-up call failed.
func fatalIf(t *testing.T, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("set-up %s: %v", call, err)
	}
}
