package cloud_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/analyze/cloud"
	"github.com/abuse-responder/abuse-responder/internal/awstest"
)

// newFake returns the EC2 fake holding instance i-web: in subnet-a of
// vpc-a behind acl-a and sg-web, reachable at 198.51.100.7 only through
// its interface's association (no Elastic IP, so only the ENI lookup,
// which moto lacks, can find it), and managed by SSM.
func newFake(t *testing.T) *awstest.EC2Fake {
	t.Helper()
	awstest.Env(t)
	f := awstest.NewEC2Fake(t)
	f.AddInstance(awstest.Instance{
		ID: "i-web", VPCID: "vpc-a", SubnetID: "subnet-a", PrivateIP: "10.0.1.5", Groups: []string{"sg-web"},
		Tags: map[string]string{"Name": "web"}, LaunchTime: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
		InstanceProfileARN: "arn:aws:iam::123456789012:instance-profile/web",
	})
	f.AddENI(awstest.ENI{ID: "eni-web", VPCID: "vpc-a", SubnetID: "subnet-a", InstanceID: "i-web",
		PrivateIPs: []string{"10.0.1.5"}, PublicIP: "198.51.100.7", Groups: []string{"sg-web"}})
	f.AddNetworkACL(
		awstest.NetworkACL{ID: "acl-default", VPCID: "vpc-a", Default: true},
		awstest.NetworkACL{ID: "acl-a", VPCID: "vpc-a", Subnets: []string{"subnet-a"}, Entries: []awstest.ACLEntry{
			{RuleNumber: 100, Egress: true, Action: "allow", Protocol: "-1", CIDR: "0.0.0.0/0"},
		}},
	)
	f.AddSecurityGroup(awstest.SecurityGroup{ID: "sg-web", Name: "web", VPCID: "vpc-a",
		Egress: []awstest.SGRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}})
	f.SetSSMManaged("i-web")
	return f
}

// fakeClients points NewClients at the fake, with no retries unless the
// test asks for them.
func fakeClients(t *testing.T, f *awstest.EC2Fake, o cloud.Options) *cloud.Clients {
	t.Helper()
	o.Region, o.EndpointURL = awstest.Region, f.URL()
	c, err := cloud.NewClients(context.Background(), o)
	if err != nil {
		t.Fatalf("NewClients: %v", err)
	}
	return c
}

func TestResolveByENIAssociation(t *testing.T) {
	f := newFake(t)
	inst, err := fakeClients(t, f, cloud.Options{MaxAttempts: 1}).Resolve(context.Background(), "", netip.MustParseAddr("198.51.100.7"))
	if err != nil {
		t.Fatalf("Resolve(198.51.100.7): %v", err)
	}
	if !inst.Found || inst.InstanceID != "i-web" || inst.ResolvedBy != cloud.ResolvedByENIAssociation {
		t.Fatalf("Resolve = found %v %q by %q, want i-web by eni-association", inst.Found, inst.InstanceID, inst.ResolvedBy)
	}
	if inst.NetworkACL == nil || inst.NetworkACL.ID != "acl-a" || inst.NetworkACL.AssociationID != "aclassoc-a" {
		t.Errorf("NetworkACL = %+v, want acl-a with association aclassoc-a", inst.NetworkACL)
	}
	if inst.SSMManaged == nil || !*inst.SSMManaged || inst.Note != "" {
		t.Errorf("SSMManaged = %v, Note %q; want true and no note", inst.SSMManaged, inst.Note)
	}
	if inst.InstanceProfile != "arn:aws:iam::123456789012:instance-profile/web" || !slices.Equal(inst.PublicIPs, []string{"198.51.100.7"}) {
		t.Errorf("profile %q, public IPs %v", inst.InstanceProfile, inst.PublicIPs)
	}
	want := []string{"DescribeNetworkInterfaces", "DescribeInstances", "DescribeNetworkAcls", "DescribeSecurityGroups", "DescribeInstanceInformation"}
	if got := f.Calls(); !slices.Equal(got, want) {
		t.Errorf("Calls() = %v, want %v", got, want)
	}
}

func TestResolveAddressOfNoInstance(t *testing.T) {
	f := newFake(t)
	f.AddENI(awstest.ENI{ID: "eni-nat", SubnetID: "subnet-a", PublicIP: "198.51.100.8", InterfaceType: "nat_gateway", Description: "NAT"})
	inst, err := fakeClients(t, f, cloud.Options{MaxAttempts: 1}).Resolve(context.Background(), "", netip.MustParseAddr("198.51.100.8"))
	if err != nil || inst.Found || !strings.Contains(inst.Note, "eni-nat (type nat_gateway") {
		t.Errorf("Resolve(198.51.100.8) = found %v note %q, %v; want not found, a note naming eni-nat", inst.Found, inst.Note, err)
	}
}

func TestResolveFollowsPages(t *testing.T) {
	f := newFake(t)
	f.SetPageSize(1)
	// i-old holds its address only as an instance ip-address, after two
	// other instances and three interfaces: every lookup needs 3 pages.
	f.AddInstance(awstest.Instance{ID: "i-a"}, awstest.Instance{ID: "i-old", VPCID: "vpc-a", SubnetID: "subnet-a",
		PublicIP: "203.0.113.50", NoInterfaceSet: true})
	f.AddENI(awstest.ENI{ID: "eni-b"}, awstest.ENI{ID: "eni-old", SubnetID: "subnet-a", InstanceID: "i-old", PrivateIPs: []string{"10.0.1.9"}})

	inst, err := fakeClients(t, f, cloud.Options{MaxAttempts: 1}).Resolve(context.Background(), "", netip.MustParseAddr("203.0.113.50"))
	if err != nil {
		t.Fatalf("Resolve(203.0.113.50): %v", err)
	}
	if inst.InstanceID != "i-old" || inst.ResolvedBy != cloud.ResolvedByInstanceIP {
		t.Fatalf("Resolve = %q by %q, want i-old by instance-ip", inst.InstanceID, inst.ResolvedBy)
	}
	if len(inst.ENIs) != 1 || inst.ENIs[0].ID != "eni-old" {
		t.Errorf("ENIs = %+v, want eni-old from DescribeNetworkInterfaces", inst.ENIs)
	}
	count := map[string]int{}
	for _, c := range f.Calls() {
		count[c]++
	}
	// 3 ENI pages by association, 3 more by attachment; 3 instance pages.
	if count["DescribeNetworkInterfaces"] != 6 || count["DescribeInstances"] != 3 || count["DescribeAddresses"] != 1 {
		t.Errorf("calls = %v, want 6 DescribeNetworkInterfaces, 3 DescribeInstances, 1 DescribeAddresses", count)
	}
}

func TestResolveRetriesThrottling(t *testing.T) {
	if testing.Short() {
		t.Skip("the SDK backs off for up to 6 s")
	}
	f := newFake(t)
	f.FailNext("DescribeInstances", "RequestLimitExceeded", 503, 2)
	// MaxAttempts 0: the SDK's standard retryer, 3 attempts.
	inst, err := fakeClients(t, f, cloud.Options{}).Resolve(context.Background(), "i-web", netip.Addr{})
	if err != nil || !inst.Found {
		t.Fatalf("Resolve after 2 throttles = found %v, %v; want found", inst.Found, err)
	}
	if n := slices.Index(f.Calls(), "DescribeNetworkAcls"); n != 3 {
		t.Errorf("Calls() = %v, want 3 DescribeInstances first", f.Calls())
	}

	f.FailNext("DescribeInstances", "RequestLimitExceeded", 503, 2)
	before := len(f.Calls())
	_, err = fakeClients(t, f, cloud.Options{MaxAttempts: 1}).Resolve(context.Background(), "i-web", netip.Addr{})
	if err == nil || len(f.Calls()) != before+1 {
		t.Errorf("Resolve with MaxAttempts 1 = %v after %d calls, want an error after 1", err, len(f.Calls())-before)
	}
}

func TestResolveSecurityGroupsDenied(t *testing.T) {
	f := newFake(t)
	f.FailNext("DescribeSecurityGroups", "UnauthorizedOperation", 403, 1)
	inst, err := fakeClients(t, f, cloud.Options{MaxAttempts: 1}).Resolve(context.Background(), "i-web", netip.Addr{})
	if !cloud.IsAccessDenied(err) || !strings.Contains(err.Error(), "security groups of i-web") {
		t.Fatalf("Resolve with DescribeSecurityGroups denied = %v, want a wrapped access denied", err)
	}
	if cloud.IsNotFound(err) {
		t.Errorf("IsNotFound(%v) = true, want false", err)
	}
	// What was learned before and after the denied call is kept.
	if !inst.Found || inst.NetworkACL == nil || inst.SSMManaged == nil {
		t.Errorf("partial Instance = found %v acl %v ssm %v, want all set", inst.Found, inst.NetworkACL, inst.SSMManaged)
	}
}

func TestResolveSSMDenied(t *testing.T) {
	f := newFake(t)
	f.FailNext("DescribeInstanceInformation", "AccessDeniedException", 400, 1)
	inst, err := fakeClients(t, f, cloud.Options{MaxAttempts: 1}).Resolve(context.Background(), "i-web", netip.Addr{})
	if err != nil {
		t.Fatalf("Resolve with SSM denied: %v, want no error", err)
	}
	if inst.SSMManaged != nil || inst.Note != "SSM status unknown: access denied" {
		t.Errorf("SSMManaged = %v, Note %q; want nil and the reason", inst.SSMManaged, inst.Note)
	}
}

func TestNewClientsAssumesRole(t *testing.T) {
	f := newFake(t)
	c := fakeClients(t, f, cloud.Options{MaxAttempts: 1, RoleARN: "arn:aws:iam::123456789012:role/abuse-responder", ExternalID: "ext-42"})
	if _, err := c.Resolve(context.Background(), "i-web", netip.Addr{}); err != nil {
		t.Fatalf("Resolve with an assumed role: %v", err)
	}
	log := f.CallLog()
	first := log[0]
	if first.IAMAction() != "sts:AssumeRole" || first.Params.Get("RoleArn") != "arn:aws:iam::123456789012:role/abuse-responder" ||
		first.Params.Get("ExternalId") != "ext-42" || first.AccessKeyID != awstest.AccessKeyID {
		t.Fatalf("first call = %s %v by %q, want sts:AssumeRole with the role, external id, and the ambient key", first.IAMAction(), first.Params, first.AccessKeyID)
	}
	for _, call := range log[1:] {
		if call.Service == "sts" || call.AccessKeyID != awstest.AssumedAccessKeyID+"1" {
			t.Errorf("%s used key %q, want the assumed %s1 (one AssumeRole for all calls)", call.IAMAction(), call.AccessKeyID, awstest.AssumedAccessKeyID)
		}
	}
}

func TestResolveNotes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		id, ip    string
		fail      string // action denied once
		wantNote  string
		wantError bool
	}{
		{name: "id with another address", id: "i-web", ip: "198.51.100.99", wantNote: "i-web does not hold 198.51.100.99 now"},
		{name: "interface lookup denied", ip: "198.51.100.99", fail: "DescribeNetworkInterfaces",
			wantNote: "no instance has 198.51.100.99 now: the address may have changed hands (the lookup by interface association failed"},
		{name: "address lookup denied", ip: "198.51.100.99", fail: "DescribeAddresses", wantError: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			if tc.fail != "" {
				f.FailNext(tc.fail, "UnauthorizedOperation", 403, 1)
			}
			inst, err := fakeClients(t, f, cloud.Options{MaxAttempts: 1}).Resolve(context.Background(), tc.id, netip.MustParseAddr(tc.ip))
			if tc.wantError {
				if !cloud.IsAccessDenied(err) || inst.Found {
					t.Errorf("Resolve = found %v, %v; want a wrapped access denied", inst.Found, err)
				}
				return
			}
			if err != nil || !strings.Contains(inst.Note, tc.wantNote) {
				t.Errorf("Resolve = note %q, %v; want a note with %q", inst.Note, err, tc.wantNote)
			}
		})
	}
}
