package ec2emu_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/abuse-responder/abuse-responder/internal/awstest"
	"github.com/abuse-responder/abuse-responder/internal/ec2emu"
)

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestSnapshots: the instance's volumes in DescribeInstances, then
// CreateSnapshot (DryRun, tags, errors) and DescribeSnapshots (tag
// filters, owners, pages), through the real SDK client.
func TestSnapshots(t *testing.T) {
	f := awstest.NewEC2Fake(t)
	f.AddInstance(ec2emu.Instance{ID: "i-1"})
	f.AddVolume(ec2emu.Volume{ID: "vol-1", InstanceID: "i-1", SizeGiB: 20, Encrypted: true},
		ec2emu.Volume{ID: "vol-2", InstanceID: "i-1", Device: "/dev/xvdf"})
	c := ec2.NewFromConfig(awstest.Config(t, f.URL()))
	ctx := context.Background()

	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-1"}})
	if err != nil {
		t.Fatal(err)
	}
	bdm := out.Reservations[0].Instances[0].BlockDeviceMappings
	if len(bdm) != 2 || aws.ToString(bdm[0].Ebs.VolumeId) != "vol-1" || aws.ToString(bdm[1].DeviceName) != "/dev/xvdf" {
		t.Fatalf("blockDeviceMappings = %+v", bdm)
	}

	tagged := func(vol string, dryRun bool, resourceType types.ResourceType) (*ec2.CreateSnapshotOutput, error) {
		return c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(vol), Description: aws.String("evidence"),
			DryRun: aws.Bool(dryRun), TagSpecifications: []types.TagSpecification{{ResourceType: resourceType,
				Tags: []types.Tag{{Key: aws.String("case"), Value: aws.String("c-1")}}}}})
	}
	if _, err := tagged("vol-1", true, types.ResourceTypeSnapshot); code(err) != "DryRunOperation" {
		t.Errorf("CreateSnapshot dry run = %v, want DryRunOperation", err)
	}
	if _, err := tagged("vol-9", false, types.ResourceTypeSnapshot); code(err) != "InvalidVolume.NotFound" {
		t.Errorf("CreateSnapshot of an unknown volume = %v", err)
	}
	if _, err := tagged("vol-1", false, types.ResourceTypeVolume); code(err) != "InvalidParameterValue" {
		t.Errorf("CreateSnapshot tagging a volume = %v", err)
	}
	if n := len(f.Snapshots()); n != 0 {
		t.Fatalf("%d snapshots after the refused calls", n)
	}
	s, err := tagged("vol-1", false, types.ResourceTypeSnapshot)
	if err != nil || s.State != types.SnapshotStatePending || aws.ToInt32(s.VolumeSize) != 20 || !aws.ToBool(s.Encrypted) ||
		aws.ToString(s.OwnerId) != awstest.AccountID || s.StartTime == nil || len(s.Tags) != 1 {
		t.Fatalf("CreateSnapshot = %+v, %v", s, err)
	}
	if _, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String("vol-2")}); err != nil {
		t.Fatal(err)
	}

	find := func(in *ec2.DescribeSnapshotsInput) []string {
		t.Helper()
		var ids []string
		p := ec2.NewDescribeSnapshotsPaginator(c, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page.Snapshots {
				ids = append(ids, aws.ToString(s.SnapshotId)+"/"+string(s.State))
			}
		}
		return ids
	}
	caseFilter := []types.Filter{{Name: aws.String("tag:case"), Values: []string{"c-1"}}}
	if got := find(&ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: caseFilter}); len(got) != 1 ||
		got[0] != aws.ToString(s.SnapshotId)+"/completed" {
		t.Errorf("snapshots tagged case=c-1 = %v, want only %s, completed", got, aws.ToString(s.SnapshotId))
	}
	if got := find(&ec2.DescribeSnapshotsInput{OwnerIds: []string{"amazon"}, Filters: caseFilter}); len(got) != 0 {
		t.Errorf("amazon's snapshots = %v, want none", got)
	}
	f.SetPageSize(1)
	if got := find(&ec2.DescribeSnapshotsInput{}); len(got) != 2 {
		t.Errorf("every snapshot, a page at a time = %v, want 2", got)
	}
}
