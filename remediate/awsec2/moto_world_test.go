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

// motoWorld is awstest's moto world with the backend; its web group
// also allows tcp 443 in from anywhere, and an empty isolation group
// waits for quarantine.
type motoWorld struct {
	*awstest.MotoWorld
	backend    *awsec2.Backend
	quarantine string
}

func newMotoWorld(t *testing.T) *motoWorld {
	t.Helper()
	w := &motoWorld{MotoWorld: awstest.NewMotoWorld(t, awstest.MotoWorldOptions{})}
	ctx := context.Background()
	var err error
	w.backend, err = awsec2.New(ctx, awsec2.Options{Region: awstest.Region, EndpointURL: w.Moto.URL(), MaxAttempts: 1, RuleBand: band})
	fatalIf(t, "New", err)
	_, err = w.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: &w.Group,
		IpPermissions: []types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
			IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}},
		}},
	})
	fatalIf(t, "AuthorizeSecurityGroupIngress", err)
	w.quarantine = w.CreateGroup(t, "quarantine", "quarantine")
	return w
}

// aclJSON is the ACL as DescribeNetworkAcls shows it, for byte-for-byte
// comparisons.
func (w *motoWorld) aclJSON(t *testing.T) string {
	t.Helper()
	out, err := w.EC2.DescribeNetworkAcls(context.Background(), &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{w.ACL}})
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
	out, err := w.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{w.Instance}})
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
	out, err := w.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{w.Instance}})
	fatalIf(t, "DescribeInstances", err)
	tags := map[string]string{}
	for _, tg := range out.Reservations[0].Instances[0].Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return tags
}
