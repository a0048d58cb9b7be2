package awsec2_test

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/internal/awstest"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/remediate/awsec2"
)

// One moto_server serves every moto test of the package.
func TestMain(m *testing.M) {
	code := m.Run()
	awstest.StopSharedMoto()
	os.Exit(code)
}

// band is the rule band of the tests, as in config.example.toml.
var band = [2]int32{40, 89}

// fakeWorld is the EC2 fake with one instance in a subnet whose own ACL
// allows all egress at 100 and HTTPS at 110, as most real ACLs do.
type fakeWorld struct {
	fake    *awstest.EC2Fake
	backend *awsec2.Backend
}

func newFakeWorld(t *testing.T) *fakeWorld {
	t.Helper()
	f := awstest.NewEC2Fake(t)
	f.AddNetworkACL(
		awstest.NetworkACL{ID: "acl-default", VPCID: "vpc-1", Default: true, Entries: []awstest.ACLEntry{
			{RuleNumber: 100, Egress: true, Action: "allow", Protocol: "-1", CIDR: "0.0.0.0/0"},
			{RuleNumber: 32767, Egress: true, Action: "deny", Protocol: "-1", CIDR: "0.0.0.0/0"},
		}},
		awstest.NetworkACL{ID: "acl-1", VPCID: "vpc-1", Subnets: []string{"subnet-1"}, Entries: []awstest.ACLEntry{
			{RuleNumber: 100, Egress: true, Action: "allow", Protocol: "-1", CIDR: "0.0.0.0/0"},
			{RuleNumber: 110, Egress: true, Action: "allow", Protocol: "6", CIDR: "0.0.0.0/0", FromPort: 443, ToPort: 443},
			{RuleNumber: 100, Egress: true, Action: "allow", Protocol: "-1", IPv6CIDR: "::/0"},
			{RuleNumber: 100, Egress: false, Action: "allow", Protocol: "-1", CIDR: "0.0.0.0/0"},
			{RuleNumber: 32767, Egress: true, Action: "deny", Protocol: "-1", CIDR: "0.0.0.0/0"},
			{RuleNumber: 32767, Egress: false, Action: "deny", Protocol: "-1", CIDR: "0.0.0.0/0"},
		}},
	)
	f.AddSecurityGroup(
		awstest.SecurityGroup{ID: "sg-web", Name: "web", VPCID: "vpc-1",
			Ingress: []awstest.SGRule{{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDRs: []string{"0.0.0.0/0"}}},
			Egress:  []awstest.SGRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}},
		awstest.SecurityGroup{ID: "sg-ssh", Name: "ssh", VPCID: "vpc-1",
			Egress: []awstest.SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"0.0.0.0/0"}}}},
		awstest.SecurityGroup{ID: "sg-quarantine", Name: "quarantine", VPCID: "vpc-1"},
	)
	f.AddInstance(
		awstest.Instance{ID: "i-1", VPCID: "vpc-1", SubnetID: "subnet-1", Groups: []string{"sg-web", "sg-ssh"},
			Tags: map[string]string{"Name": "web-1"}},
		awstest.Instance{ID: "i-2", VPCID: "vpc-1", SubnetID: "subnet-2", Groups: []string{"sg-web"},
			Tags: map[string]string{"abuse-responder:protect": ""}},
	)
	f.AddENI(
		awstest.ENI{ID: "eni-1", SubnetID: "subnet-1", VPCID: "vpc-1", InstanceID: "i-1", Groups: []string{"sg-web", "sg-ssh"}},
		awstest.ENI{ID: "eni-1b", SubnetID: "subnet-1", VPCID: "vpc-1", InstanceID: "i-1", Groups: []string{"sg-web"}},
		awstest.ENI{ID: "eni-2", SubnetID: "subnet-2", VPCID: "vpc-1", InstanceID: "i-2", Groups: []string{"sg-web"}},
	)
	return &fakeWorld{fake: f, backend: awsec2.NewWithClient(fakeClient(t, f, 1)).WithRuleBand(band)}
}

// fakeClient is an EC2 client for the fake with the SDK's standard
// retryer (the one New uses) making up to attempts attempts, without the
// backoff sleeps.
func fakeClient(t *testing.T, f *awstest.EC2Fake, attempts int) *ec2.Client {
	return ec2.NewFromConfig(awstest.Config(t, f.URL()), func(o *ec2.Options) {
		o.RetryMaxAttempts = attempts // awstest.Config says 1, which would cap the retryer below
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = attempts
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	})
}

// input is a case against i-1 with the given targets and kinds.
func input(kinds []remediate.Kind, targets ...abuse.Target) remediate.Input {
	return remediate.Input{
		CaseID:    "case-7",
		Type:      abuse.Type("port-scanning"),
		Targets:   targets,
		Instances: []remediate.InstanceRef{{ID: "i-1", Region: awstest.Region, Account: awstest.AccountID}},
		Policy: remediate.Policy{
			Kinds: kinds, ProtectTag: "abuse-responder:protect", RuleBand: band, NACLQuota: 20,
			QuarantineGroup: "sg-quarantine",
		},
	}
}

func target(ip, proto string, port uint16) abuse.Target {
	return abuse.Target{IP: netip.MustParseAddr(ip), Protocol: proto, Port: port}
}

// countCalls counts the calls of action in the fake's log.
func countCalls(f *awstest.EC2Fake, action string) int {
	n := 0
	for _, c := range f.Calls() {
		if c == action {
			n++
		}
	}
	return n
}

// egress lists an ACL's egress entries as "number action proto cidr ports".
func egress(t *testing.T, f *awstest.EC2Fake, id string) []string {
	t.Helper()
	acl, ok := f.NetworkACL(id)
	if !ok {
		t.Fatalf("no ACL %s", id)
	}
	var out []string
	for _, e := range acl.Entries {
		if e.Egress {
			cidr := e.CIDR + e.IPv6CIDR
			out = append(out, strings.Join([]string{itoa(e.RuleNumber), e.Action, e.Protocol, cidr, itoa(e.FromPort) + "-" + itoa(e.ToPort)}, " "))
		}
	}
	slices.Sort(out)
	return out
}

func mustPlan(t *testing.T, b *awsec2.Backend, in remediate.Input) ([]remediate.Action, []remediate.Refusal) {
	t.Helper()
	actions, refusals, err := b.Plan(context.Background(), in)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return actions, refusals
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}
