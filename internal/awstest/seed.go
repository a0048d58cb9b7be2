package awstest

import "testing"

// SeedInstanceID is the instance the seed notice (cmd/abuse-responder's
// testdata/seed-notice.eml) names.
const SeedInstanceID = "i-0a1b2c3d4e5f60718"

// SeedOptions says how a SeedWorld differs from the default one.
type SeedOptions struct {
	// PublicIP is the instance's public address; "198.51.100.7" when
	// empty.
	PublicIP string
	// Tags are the instance's tags.
	Tags map[string]string
	// IngressAllow adds an ingress allow of everything at rule 100 to the
	// network ACL, after the egress one.
	IngressAllow bool
	// GroupIngress and GroupEgress are the rules of the group sg-web.
	GroupIngress, GroupEgress []SGRule
}

// SeedWorld starts the EC2 fake (closed in t.Cleanup) holding the seed's
// account: instance SeedInstanceID in vpc-a and subnet-a, private address
// 10.0.1.5, in the group sg-web ("web"), with its interface eni-web; the
// subnet's network ACL acl-a, which allows all egress at rule 100. It
// does not call Env.
func SeedWorld(t testing.TB, opts SeedOptions) *EC2Fake {
	t.Helper()
	if opts.PublicIP == "" {
		opts.PublicIP = "198.51.100.7"
	}
	f := NewEC2Fake(t)
	f.AddInstance(Instance{ID: SeedInstanceID, VPCID: "vpc-a", SubnetID: "subnet-a", PrivateIP: "10.0.1.5",
		PublicIP: opts.PublicIP, Groups: []string{"sg-web"}, Tags: opts.Tags})
	f.AddENI(ENI{ID: "eni-web", VPCID: "vpc-a", SubnetID: "subnet-a", InstanceID: SeedInstanceID,
		PrivateIPs: []string{"10.0.1.5"}, PublicIP: opts.PublicIP, Groups: []string{"sg-web"}})
	entries := []ACLEntry{{RuleNumber: 100, Egress: true, Action: "allow", Protocol: "-1", CIDR: "0.0.0.0/0"}}
	if opts.IngressAllow {
		entries = append(entries, ACLEntry{RuleNumber: 100, Egress: false, Action: "allow", Protocol: "-1", CIDR: "0.0.0.0/0"})
	}
	f.AddNetworkACL(NetworkACL{ID: "acl-a", VPCID: "vpc-a", Subnets: []string{"subnet-a"}, Entries: entries})
	f.AddSecurityGroup(SecurityGroup{ID: "sg-web", Name: "web", VPCID: "vpc-a", Ingress: opts.GroupIngress, Egress: opts.GroupEgress})
	return f
}
