package cloud_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/abuse-responder/abuse-responder/analyze/cloud"
)

func TestResolveOnMoto(t *testing.T) {
	w := newMotoWorld(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		id         string
		ip         netip.Addr
		resolvedBy string
	}{
		{"by instance id", w.Instance, netip.Addr{}, cloud.ResolvedByInstanceID},
		// moto lacks the ENI association.public-ip filter: the chain
		// must go on to DescribeAddresses.
		{"by elastic IP", "", netip.MustParseAddr(w.EIP), cloud.ResolvedByAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst, err := w.clients.Resolve(ctx, tc.id, tc.ip)
			if err != nil {
				t.Fatalf("Resolve(%q, %v): %v", tc.id, tc.ip, err)
			}
			if !inst.Found || inst.InstanceID != w.Instance || inst.ResolvedBy != tc.resolvedBy || inst.State != "running" {
				t.Fatalf("Resolve = found %v id %q by %q state %q; want %s by %s, running",
					inst.Found, inst.InstanceID, inst.ResolvedBy, inst.State, w.Instance, tc.resolvedBy)
			}
			checkMotoInstance(t, w, inst)
		})
	}
}

func checkMotoInstance(t *testing.T, w *motoWorld, inst cloud.Instance) {
	t.Helper()
	if inst.Tags["Name"] != "web-1" || inst.Tags["team"] != "web" {
		t.Errorf("Tags = %v, want Name=web-1 team=web", inst.Tags)
	}
	if inst.VPCID != w.VPC || inst.SubnetID != w.Subnet || inst.Region != "us-east-1" || inst.LaunchTime == nil {
		t.Errorf("VPC %q subnet %q region %q launch %v; want %s %s us-east-1 and a time", inst.VPCID, inst.SubnetID, inst.Region, inst.LaunchTime, w.VPC, w.Subnet)
	}
	acl := inst.NetworkACL
	if acl == nil || acl.ID != w.ACL || acl.IsDefault || acl.AssociationID == "" {
		t.Fatalf("NetworkACL = %+v, want %s, not default, with the subnet's association", acl, w.ACL)
	}
	want := []cloud.ACLEntry{
		{RuleNumber: 100, Egress: true, Action: "allow", Protocol: "all", CIDR: "0.0.0.0/0"},
		{RuleNumber: 110, Egress: true, Action: "allow", Protocol: "tcp", CIDR: "0.0.0.0/0", FromPort: 443, ToPort: 443},
	}
	var egress []cloud.ACLEntry
	for _, e := range acl.Entries {
		if e.Egress && e.RuleNumber < 32767 { // leave out the implicit deny-all
			egress = append(egress, e)
		}
	}
	if !slices.Equal(egress, want) {
		t.Errorf("egress ACL entries = %+v, want %+v", egress, want)
	}
	if len(inst.SecurityGroups) != 1 || inst.SecurityGroups[0].ID != w.Group || inst.SecurityGroups[0].Name != "web" {
		t.Fatalf("SecurityGroups = %+v, want [%s web]", inst.SecurityGroups, w.Group)
	}
	if !slices.ContainsFunc(inst.SecurityGroups[0].Egress, func(r cloud.SGRule) bool {
		return r.Protocol == "tcp" && r.FromPort == 443 && r.ToPort == 443 && slices.Equal(r.CIDRs, []string{"203.0.113.0/24"})
	}) {
		t.Errorf("egress rules = %+v, want tcp 443 to 203.0.113.0/24", inst.SecurityGroups[0].Egress)
	}
	if len(inst.ENIs) != 1 || inst.ENIs[0].ID != w.ENI || len(inst.ENIs[0].PrivateIPs) == 0 || inst.ENIs[0].SubnetID != w.Subnet {
		t.Errorf("ENIs = %+v, want [%s] in %s with a private IP", inst.ENIs, w.ENI, w.Subnet)
	}
	if !slices.Contains(inst.PublicIPs, w.EIP) {
		t.Errorf("PublicIPs = %v, want it to hold the Elastic IP %s", inst.PublicIPs, w.EIP)
	}
	// moto has no SSM DescribeInstanceInformation (it answers 500).
	if inst.SSMManaged != nil || !strings.Contains(inst.Note, "SSM status unknown") {
		t.Errorf("SSMManaged = %v, Note %q; want nil and a note (moto lacks the call)", inst.SSMManaged, inst.Note)
	}
}

func TestResolveTerminatedOnMoto(t *testing.T) {
	w := newMotoWorld(t)
	ctx := context.Background()
	gone := w.RunInstance(t, "old")
	_, err := w.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{gone}})
	fatalIf(t, "TerminateInstances", err)

	inst, err := w.clients.Resolve(ctx, gone, netip.Addr{})
	if err != nil {
		t.Fatalf("Resolve(%s): %v", gone, err)
	}
	if !inst.Found || inst.State != "terminated" || inst.Note != "terminated" || inst.NetworkACL != nil {
		t.Errorf("Resolve(terminated) = found %v state %q note %q acl %v; want found, terminated, note, no ACL",
			inst.Found, inst.State, inst.Note, inst.NetworkACL)
	}
}

func TestResolveUnknownOnMoto(t *testing.T) {
	w := newMotoWorld(t)
	ctx := context.Background()
	for _, tc := range []struct {
		id   string
		ip   netip.Addr
		note string
	}{
		{"i-0123456789abcdef0", netip.Addr{}, "no instance i-0123456789abcdef0 in us-east-1"},
		{"", netip.MustParseAddr("198.51.100.99"), "no instance has 198.51.100.99 now"},
	} {
		inst, err := w.clients.Resolve(ctx, tc.id, tc.ip)
		if err != nil {
			t.Fatalf("Resolve(%q, %v): %v", tc.id, tc.ip, err)
		}
		if inst.Found || !strings.HasPrefix(inst.Note, tc.note) || inst.Query == "" {
			t.Errorf("Resolve(%q, %v) = found %v note %q query %q; want not found, note %q", tc.id, tc.ip, inst.Found, inst.Note, inst.Query, tc.note)
		}
	}
}
