package awstest

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopSharedMoto()
	os.Exit(code)
}

func TestMotoAnswersAndResets(t *testing.T) {
	m := SharedMoto(t)
	ctx := context.Background()
	client := ec2.NewFromConfig(Config(t, m.URL()))
	if _, err := client.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16")}); err != nil {
		t.Fatalf("CreateVpc: %v", err)
	}
	count := func() int {
		out, err := client.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("cidr"), Values: []string{"10.9.0.0/16"}}}})
		if err != nil {
			t.Fatalf("DescribeVpcs: %v", err)
		}
		return len(out.Vpcs)
	}
	if n := count(); n != 1 {
		t.Fatalf("VPCs with 10.9.0.0/16 before reset = %d, want 1", n)
	}
	m.Reset(t)
	if n := count(); n != 0 {
		t.Fatalf("VPCs with 10.9.0.0/16 after reset = %d, want 0", n)
	}
}

func TestStartMotoStopsInCleanup(t *testing.T) {
	var url string
	t.Run("own", func(t *testing.T) {
		url = StartMoto(t).URL()
		resp, err := http.Get(url + "/moto-api/data.json")
		if err != nil {
			t.Fatalf("GET data.json: %v", err)
		}
		resp.Body.Close()
	})
	if url == "" {
		t.Skip("moto_server not available")
	}
	if resp, err := http.Get(url + "/moto-api/data.json"); err == nil {
		resp.Body.Close()
		t.Fatalf("moto at %s still answers after its test ended", url)
	}
}

func TestFakeFaultsAndCallLog(t *testing.T) {
	f := NewEC2Fake(t)
	f.AddInstance(Instance{ID: "i-1", PublicIP: "198.51.100.7"})
	f.FailNext("DescribeInstances", "UnauthorizedOperation", 403, 1)
	client := ec2.NewFromConfig(Config(t, f.URL()))
	ctx := context.Background()

	_, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnauthorizedOperation" {
		t.Fatalf("DescribeInstances with a fault = %v, want UnauthorizedOperation", err)
	}
	out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("ip-address"), Values: []string{"198.51.100.7"}}},
	})
	if err != nil || len(out.Reservations) != 1 || aws.ToString(out.Reservations[0].Instances[0].InstanceId) != "i-1" {
		t.Fatalf("DescribeInstances(ip-address) = %+v, %v; want i-1", out, err)
	}
	_, err = client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-404"}})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidInstanceID.NotFound" {
		t.Fatalf("DescribeInstances(i-404) = %v, want InvalidInstanceID.NotFound", err)
	}
	_, err = client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("no-such-filter"), Values: []string{"x"}}},
	})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterValue" {
		t.Fatalf("DescribeInstances(no-such-filter) = %v, want InvalidParameterValue", err)
	}

	if got, want := f.Calls(), []string{"DescribeInstances", "DescribeInstances", "DescribeInstances", "DescribeInstances"}; !slices.Equal(got, want) {
		t.Errorf("Calls() = %v, want %v", got, want)
	}
	log := f.CallLog()
	if log[0].Fault != "UnauthorizedOperation" || log[1].Fault != "" {
		t.Errorf("CallLog faults = %q, %q; want UnauthorizedOperation, \"\"", log[0].Fault, log[1].Fault)
	}
	if log[1].AccessKeyID != AccessKeyID || log[1].IAMAction() != "ec2:DescribeInstances" {
		t.Errorf("CallLog[1] = key %q action %q, want %q ec2:DescribeInstances", log[1].AccessKeyID, log[1].IAMAction(), AccessKeyID)
	}
}

func TestFakePagesBeforeFiltering(t *testing.T) {
	f := NewEC2Fake(t)
	f.SetPageSize(1)
	f.AddENI(ENI{ID: "eni-1", PublicIP: "192.0.2.1"}, ENI{ID: "eni-2"}, ENI{ID: "eni-3", PublicIP: "192.0.2.3"})
	client := ec2.NewFromConfig(Config(t, f.URL()))
	p := ec2.NewDescribeNetworkInterfacesPaginator(client, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("association.public-ip"), Values: []string{"192.0.2.3"}}},
	})
	var pages, found []string
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("NextPage: %v", err)
		}
		pages = append(pages, "page")
		for _, e := range out.NetworkInterfaces {
			found = append(found, aws.ToString(e.NetworkInterfaceId))
		}
	}
	if len(pages) != 3 || !slices.Equal(found, []string{"eni-3"}) {
		t.Errorf("pages = %d, found %v; want 3 pages and [eni-3]", len(pages), found)
	}
}
