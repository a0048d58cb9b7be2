package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/internal/awstest"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/remediate/awsec2"
)

// The IAM policies shipped in iam/ must allow exactly the AWS calls the
// code makes. TestIAMPoliciesMatchCalls drives the real commands against
// the EC2 fake, collects every call as an IAM action, and compares.

const iamDir = "../../iam"

// iamUnreachable lists the actions in the policies that the code calls
// only on paths this test cannot reach. Keep it short: every entry is an
// action the test does not prove is needed.
var iamUnreachable = map[string]string{
	// Empty: every action in the policies is called by the test.
}

// iamPrefix maps the fake's Call.Service (the SigV4 signing name) to the
// IAM service prefix. They are the same for the four services the code
// uses; a service missing here fails the test rather than being guessed.
var iamPrefix = map[string]string{"ec2": "ec2", "logs": "logs", "ssm": "ssm", "sts": "sts"}

// iamPolicy is the part of an IAM policy document the test reads.
type iamPolicy struct {
	Version   string
	Statement []struct {
		Sid       string
		Effect    string
		Action    json.RawMessage // a string or a list of strings
		Principal json.RawMessage
		Resource  json.RawMessage
		Condition map[string]map[string]json.RawMessage
	}
}

// loadPolicy reads one policy file and returns its allowed actions. A
// wildcard or a Deny fails the test: the point is an explicit list.
func loadPolicy(t *testing.T, name string) (iamPolicy, map[string]bool) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(iamDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var p iamPolicy
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if p.Version != "2012-10-17" {
		t.Errorf("%s: Version %q, want 2012-10-17", name, p.Version)
	}
	actions := map[string]bool{}
	for i, s := range p.Statement {
		if s.Effect != "Allow" {
			t.Errorf("%s: statement %d (%s) has Effect %q; the policies only allow", name, i, s.Sid, s.Effect)
		}
		var list []string
		if err := json.Unmarshal(s.Action, &list); err != nil {
			var one string
			if err := json.Unmarshal(s.Action, &one); err != nil {
				t.Fatalf("%s: statement %d (%s): Action is neither a string nor a list: %s", name, i, s.Sid, s.Action)
			}
			list = []string{one}
		}
		for _, a := range list {
			if strings.ContainsAny(a, "*?") {
				t.Errorf("%s: statement %d (%s) has the wildcard action %q; list the calls instead", name, i, s.Sid, a)
			}
			actions[a] = true
		}
	}
	return p, actions
}

// iamWorld is the seed's account with everything the commands touch: the
// instance with enis interfaces (one: the group swaps use
// ModifyInstanceAttribute; more: ModifyNetworkInterfaceAttribute), its
// subnet's ACL, a group whose rules the per-case copy must take over (so
// that Authorize and Revoke run), the quarantine group, a flow log with
// records of the abuse, and SSM running collect on the instance.
func iamWorld(t *testing.T, enis int) *awstest.EC2Fake {
	t.Helper()
	awstest.Env(t)
	const inst = awstest.SeedInstanceID
	f := awstest.SeedWorld(t, awstest.SeedOptions{IngressAllow: true,
		GroupIngress: []awstest.SGRule{{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDRs: []string{"0.0.0.0/0"}}},
		// The notice gives no protocol, so all egress by address goes;
		// the rule naming a group stays and must be authorized on the copy.
		GroupEgress: []awstest.SGRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}},
			{Protocol: "tcp", FromPort: 5432, ToPort: 5432, Groups: []string{"sg-db"}}}})
	for i := 1; i < enis; i++ {
		f.AddENI(awstest.ENI{ID: fmt.Sprintf("eni-web%d", i), VPCID: "vpc-a", SubnetID: "subnet-a", InstanceID: inst,
			PrivateIPs: []string{fmt.Sprintf("10.0.1.%d", 5+i)}, Groups: []string{"sg-web"}})
	}
	f.AddSecurityGroup(
		awstest.SecurityGroup{ID: "sg-db", Name: "db", VPCID: "vpc-a"},
		awstest.SecurityGroup{ID: iamQuarantineGroup, Name: "quarantine", VPCID: "vpc-a"},
	)

	// Flow log records of the abuse, so that FilterLogEvents runs.
	f.AddFlowLog(awstest.FlowLog{ID: "fl-1", ResourceID: "subnet-a", LogGroup: "vpc-flow"})
	abuse := time.Date(2026, 4, 14, 1, 47, 2, 0, time.UTC)
	for i := range 3 {
		end := abuse.Add(time.Duration(i-1) * time.Minute)
		f.PutLogEvents("vpc-flow", awstest.LogEvent{Stream: "eni-web-all", Timestamp: end,
			Message: fmt.Sprintf("2 111122223333 eni-web 10.0.1.5 203.0.113.44 40000 443 6 10 5400 %d %d ACCEPT OK",
				end.Add(-time.Minute).Unix(), end.Unix())})
	}

	// SSM runs collect on the instance over the seed's infected host, as
	// TestAnalyzeThroughSSM does, so that SendCommand and
	// GetCommandInvocation run and succeed.
	ssmCollect(t, f)
	return f
}

const (
	iamQuarantineGroup = "sg-0123456789abcdef0"
	iamRoleARN         = "arn:aws:iam::111122223333:role/abuse-responder"
	iamExternalID      = "iam-test-external-id"
)

// iamConfig is blockConfig with host evidence through SSM, the given
// remediate.actions, and a role to assume, so that every client goes
// through STS.
func iamConfig(t *testing.T, endpoint, actions string) string {
	t.Helper()
	path := blockConfig(t, endpoint, fmt.Sprintf("actions = %s\nquarantine_group = %q\n", actions, iamQuarantineGroup))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{
		{`host_evidence = "local"`, `host_evidence = "ssm"`},
		{"id = \"111122223333\"\n", fmt.Sprintf("id = \"111122223333\"\nrole_arn = %q\nexternal_id = %q\n", iamRoleARN, iamExternalID)},
	} {
		if !bytes.Contains(b, []byte(r[0])) {
			t.Fatalf("config has no %q to replace:\n%s", r[0], b)
		}
		b = bytes.Replace(b, []byte(r[0]), []byte(r[1]), 1)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// iamActions returns the calls' IAM actions, and fails the test for a
// service whose IAM prefix it does not know.
func iamActions(t *testing.T, calls []awstest.Call) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, c := range calls {
		prefix, ok := iamPrefix[c.Service]
		if !ok {
			t.Errorf("call %s: service %q has no IAM prefix in iamPrefix", c.IAMAction(), c.Service)
			continue
		}
		set[prefix+":"+c.Action] = true
	}
	return set
}

// iamScenario drives analyze (twice), apply and unblock with all three
// EC2 actions against a fresh world, and returns the whole call log and
// how many calls the analyze runs made before apply began.
func iamScenario(t *testing.T, enis int) (calls []awstest.Call, analyzeCalls int) {
	t.Helper()
	f := iamWorld(t, enis)
	cfg := iamConfig(t, f.URL(), `["nacl", "security-group", "quarantine"]`)

	code, out, errOut := runCmd(t, "analyze", "--json", "--config", cfg, "testdata/seed-notice.eml")
	var a struct {
		Host struct {
			Collected bool
			Where     string
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &a) != nil {
		t.Fatalf("analyze --json: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	if !a.Host.Collected || !strings.HasPrefix(a.Host.Where, "ssm:") {
		t.Errorf("analyze collected host evidence %+v, want it through SSM (SendCommand must run)", a.Host)
	}

	// A notice naming only an address nobody holds: resolving it walks
	// every lookup, DescribeAddresses included (the seed names the
	// instance, so it is found by id).
	seed, err := os.ReadFile("testdata/seed-notice.eml")
	if err != nil {
		t.Fatal(err)
	}
	ipOnly := bytes.Replace(seed, []byte("EC2 Instance Id: i-0a1b2c3d4e5f60718 [198.51.100.7]"), []byte("Elastic IP: 198.51.100.99"), 1)
	if bytes.Equal(ipOnly, seed) {
		t.Fatal("the seed notice no longer names its instance as expected")
	}
	ipNotice := filepath.Join(t.TempDir(), "ip-notice.eml")
	if err := os.WriteFile(ipNotice, ipOnly, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, "analyze", "--json", "--config", cfg, ipNotice); code != 0 {
		t.Fatalf("analyze --json of an address-only notice: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	analyzeCalls = len(f.CallLog())

	if code, out, errOut := runCmd(t, "apply", "--config", cfg, "testdata/seed-notice.eml"); code != 0 {
		t.Fatalf("apply: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	if code, out, errOut := runCmd(t, "unblock", "--config", cfg, "13051177299-1"); code != 0 {
		t.Fatalf("unblock: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	iamRestored(t, f)
	return f.CallLog(), analyzeCalls
}

// iamRetryScenario is the one path where the per-case group exists when
// Apply starts, so that its tags are read back (DescribeTags): a first
// apply creates the group but is refused the group swap, a second one
// finishes the job.
func iamRetryScenario(t *testing.T) []awstest.Call {
	t.Helper()
	f := iamWorld(t, 1)
	cfg := iamConfig(t, f.URL(), `["security-group"]`)
	f.FailNext("ModifyInstanceAttribute", "UnauthorizedOperation", 403, 1)
	if code, out, errOut := runCmd(t, "apply", "--config", cfg, "testdata/seed-notice.eml"); !strings.Contains(out+errOut, "UnauthorizedOperation") {
		t.Fatalf("apply refused the swap: exit %d, stdout %s, stderr %q; want the UnauthorizedOperation reported", code, out, errOut)
	}
	if code, out, errOut := runCmd(t, "apply", "--config", cfg, "testdata/seed-notice.eml"); code != 0 {
		t.Fatalf("apply after the refusal: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	if code, out, errOut := runCmd(t, "unblock", "--config", cfg, "13051177299-1"); code != 0 {
		t.Fatalf("unblock: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	iamRestored(t, f)
	return f.CallLog()
}

// iamSnapshotScenario drives the forensic snapshots of a quarantine
// (remediate.Policy.Snapshots). The config has no key for them yet, so it
// calls the EC2 backend directly, built as the commands build it (the
// role, the external id, the fake's endpoint), on the same world: plan, a
// dry run, apply, apply again (which finds the snapshots by tag), undo
// (which keeps them).
func iamSnapshotScenario(t *testing.T) []awstest.Call {
	t.Helper()
	const inst, region = "i-0a1b2c3d4e5f60718", "eu-central-1"
	f := iamWorld(t, 1)
	f.AddVolume(awstest.Volume{ID: "vol-root", InstanceID: inst}, awstest.Volume{ID: "vol-data", InstanceID: inst, Device: "/dev/xvdf"})
	ctx := context.Background()
	b, err := awsec2.New(ctx, awsec2.Options{Region: region, EndpointURL: f.URL(), RoleARN: iamRoleARN, ExternalID: iamExternalID, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	in := remediate.Input{CaseID: "13051177299-1", Type: "port-scanning",
		Instances: []remediate.InstanceRef{{ID: inst, Region: region, Account: "111122223333"}},
		Policy: remediate.Policy{Kinds: []remediate.Kind{remediate.KindQuarantine}, QuarantineGroup: iamQuarantineGroup,
			MaxActions: 20, Snapshots: true}}
	actions, refusals, err := b.Plan(ctx, in)
	if err != nil || len(actions) != 1 || len(refusals) != 0 {
		t.Fatalf("Plan = %+v, %+v, %v; want one quarantine", actions, refusals, err)
	}
	for _, dryRun := range []bool{true, false, false} {
		if _, err := b.Apply(ctx, actions[0], dryRun); err != nil {
			t.Fatalf("Apply(dry run %v): %v", dryRun, err)
		}
	}
	c, err := b.Apply(ctx, actions[0], false)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Undo(ctx, c); err != nil {
		t.Fatalf("Undo: %v", err)
	}
	if n := len(f.Snapshots()); n != 2 {
		t.Errorf("after undo %d forensic snapshots, want both volumes' kept", n)
	}
	iamRestored(t, f)
	return f.CallLog()
}

// iamRestored checks that unblock undid everything, so that the undo
// paths (and their Delete calls) really ran.
func iamRestored(t *testing.T, f *awstest.EC2Fake) {
	t.Helper()
	in, _ := f.InstanceByID("i-0a1b2c3d4e5f60718")
	if !slices.Equal(in.Groups, []string{"sg-web"}) {
		t.Errorf("after unblock the instance carries %v, want [sg-web]", in.Groups)
	}
	if e, _ := f.ENIByID("eni-web"); !slices.Equal(e.Groups, []string{"sg-web"}) {
		t.Errorf("after unblock eni-web carries %v, want [sg-web]", e.Groups)
	}
	acl, _ := f.NetworkACL("acl-a")
	for _, e := range acl.Entries {
		if e.Action == "deny" {
			t.Errorf("after unblock acl-a still has %+v", e)
		}
	}
	for k := range in.Tags {
		if strings.HasPrefix(k, "abuse-responder:") {
			t.Errorf("after unblock the instance still has the tag %s", k)
		}
	}
	// The per-case group is the one whose rules were authorized.
	for _, c := range f.CallLog() {
		if c.Action == "AuthorizeSecurityGroupIngress" {
			if _, ok := f.SecurityGroupByID(c.Params.Get("GroupId")); ok {
				t.Errorf("after unblock the per-case group %s still exists", c.Params.Get("GroupId"))
			}
		}
	}
}

// TestIAMPoliciesMatchCalls: (a) every AWS call the commands make is
// allowed by a policy in iam/, (b) every action the policies allow is
// called (or listed in iamUnreachable), (c) analysis needs only
// analyze-policy.json.
func TestIAMPoliciesMatchCalls(t *testing.T) {
	_, analyzePolicy := loadPolicy(t, "analyze-policy.json")
	_, remediatePolicy := loadPolicy(t, "remediate-policy.json")
	_, identityPolicy := loadPolicy(t, "daemon-identity-policy.json")
	allowed := map[string]string{} // action → the file that allows it
	for file, actions := range map[string]map[string]bool{
		"analyze-policy.json": analyzePolicy, "remediate-policy.json": remediatePolicy, "daemon-identity-policy.json": identityPolicy,
	} {
		for a := range actions {
			allowed[a] = file
		}
	}

	called := map[string]bool{}
	for _, enis := range []int{1, 2} {
		calls, n := iamScenario(t, enis)
		for a := range iamActions(t, calls) {
			called[a] = true
		}
		checkIAMConditions(t, calls)
		checkAssumedRole(t, calls)

		// (c) Analysis only reads: it needs nothing beyond
		// analyze-policy.json, apart from assuming the role, which is the
		// daemon's own permission (daemon-identity-policy.json).
		var extra []string
		for a := range iamActions(t, calls[:n]) {
			if !analyzePolicy[a] && a != "sts:AssumeRole" {
				extra = append(extra, a)
			}
		}
		sort.Strings(extra)
		if len(extra) > 0 {
			t.Errorf("with %d ENIs, analyze called %v, which iam/analyze-policy.json does not allow", enis, extra)
		}
	}
	retry := iamRetryScenario(t)
	for a := range iamActions(t, retry) {
		called[a] = true
	}
	checkIAMConditions(t, retry)
	checkAssumedRole(t, retry)
	t.Run("forensic snapshots", func(t *testing.T) {
		snaps := iamSnapshotScenario(t)
		for a := range iamActions(t, snaps) {
			called[a] = true
		}
		checkIAMConditions(t, snaps)
		checkAssumedRole(t, snaps)
	})

	// (a) Every call is allowed by one of the policies.
	var missing []string
	for a := range called {
		if allowed[a] == "" {
			missing = append(missing, a)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the code calls %v, which no policy in iam/ allows", missing)
	}
	if !called["sts:AssumeRole"] || !identityPolicy["sts:AssumeRole"] {
		t.Errorf("with role_arn set, sts:AssumeRole called = %v, in daemon-identity-policy.json = %v; want both",
			called["sts:AssumeRole"], identityPolicy["sts:AssumeRole"])
	}

	// (b) Every allowed action is called, or explained in iamUnreachable.
	var unused []string
	for a, file := range allowed {
		if !called[a] && iamUnreachable[a] == "" {
			unused = append(unused, a+" ("+file+")")
		}
	}
	for a := range iamUnreachable {
		if called[a] {
			t.Errorf("%s is in iamUnreachable but the test calls it: remove it from the list", a)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("the policies allow %v, which the code never called here; remove them or explain them in iamUnreachable", unused)
	}

	// Read-only means no writing verb in analyze-policy.json, whatever
	// the test reached. SendCommand is the documented exception: it runs
	// the read-only collect on the instance.
	for a := range analyzePolicy {
		_, name, _ := strings.Cut(a, ":")
		for _, verb := range []string{"Create", "Delete", "Modify", "Authorize", "Revoke", "Put", "Replace", "Associate", "Attach"} {
			if strings.HasPrefix(name, verb) {
				t.Errorf("iam/analyze-policy.json allows %s, a write", a)
			}
		}
	}
}

// checkIAMConditions checks that the calls stay inside the Conditions of
// remediate-policy.json: tags written or deleted all have keys starting
// "abuse-responder:", and the group calls guarded by the
// aws:ResourceTag/abuse-responder:case condition only touch the per-case
// group, which CreateSecurityGroup tags with that key; CreateSnapshot
// carries the snapshot tags ForensicSnapshotsOnlyTaggedWithTheCase requires.
func checkIAMConditions(t *testing.T, calls []awstest.Call) {
	t.Helper()
	seeded := []string{"sg-web", "sg-db", iamQuarantineGroup}
	for _, c := range calls {
		if c.Service != "ec2" {
			continue
		}
		switch c.Action {
		case "CreateTags", "DeleteTags", "CreateSecurityGroup":
			keys := tagKeys(c.Params)
			if c.Action != "CreateSecurityGroup" && len(keys) == 0 {
				t.Errorf("%s with no tag keys: aws:TagKeys would be absent and the policy's Null condition denies it", c.Action)
			}
			for _, k := range keys {
				if !strings.HasPrefix(k, "abuse-responder:") {
					t.Errorf("%s with tag key %q: the policy allows only abuse-responder:* keys", c.Action, k)
				}
			}
			if c.Action == "CreateSecurityGroup" && !slices.Contains(keys, "abuse-responder:case") && c.Params.Get("DryRun") != "true" {
				t.Errorf("CreateSecurityGroup %s without the abuse-responder:case tag: the policy could not let the code change or delete it",
					c.Params.Get("GroupName"))
			}
		case "CreateSnapshot":
			keys := tagKeys(c.Params)
			if c.Params.Get("TagSpecification.1.ResourceType") != "snapshot" ||
				!slices.Equal(keys, []string{"abuse-responder:case", "abuse-responder:instance"}) {
				t.Errorf("CreateSnapshot of %s tagged %v (%s): the policy requires the snapshot tags abuse-responder:case and :instance",
					c.Params.Get("VolumeId"), keys, c.Params.Get("TagSpecification.1.ResourceType"))
			}
		case "AuthorizeSecurityGroupEgress", "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupEgress", "DeleteSecurityGroup":
			if g := c.Params.Get("GroupId"); g == "" || slices.Contains(seeded, g) {
				t.Errorf("%s on group %q: the policy allows it only on groups tagged abuse-responder:case", c.Action, g)
			}
		}
	}
}

// checkAssumedRole checks that every call but STS's own ran with the
// role's credentials: the policies above are the role's, so a call made
// with the daemon's own credentials would escape the comparison.
func checkAssumedRole(t *testing.T, calls []awstest.Call) {
	t.Helper()
	for _, c := range calls {
		switch {
		case c.Service == "sts" && c.Action == "AssumeRole":
			if c.Params.Get("RoleArn") != iamRoleARN || c.Params.Get("ExternalId") != iamExternalID {
				t.Errorf("AssumeRole RoleArn=%q ExternalId=%q, want %q and %q",
					c.Params.Get("RoleArn"), c.Params.Get("ExternalId"), iamRoleARN, iamExternalID)
			}
		case c.Service == "sts":
			t.Errorf("the code called %s; only AssumeRole is expected of STS", c.IAMAction())
		case !strings.HasPrefix(c.AccessKeyID, awstest.AssumedAccessKeyID):
			t.Errorf("%s ran with access key %q, not the assumed role's", c.IAMAction(), c.AccessKeyID)
		}
	}
}

// tagKeys lists the tag keys of an EC2 Query request: Tag.N.Key for
// CreateTags and DeleteTags, TagSpecification.N.Tag.M.Key on a create.
func tagKeys(params url.Values) []string {
	var keys []string
	for p, v := range params {
		if strings.HasSuffix(p, ".Key") && (strings.HasPrefix(p, "Tag.") || strings.Contains(p, ".Tag.")) {
			keys = append(keys, v...)
		}
	}
	sort.Strings(keys)
	return keys
}

// TestIAMTrustPolicy: the example trust policy lets a principal assume
// the role only with the external id, as the config's external_id sends it.
func TestIAMTrustPolicy(t *testing.T) {
	p, actions := loadPolicy(t, "assume-role-trust.json")
	if len(actions) != 1 || !actions["sts:AssumeRole"] {
		t.Errorf("assume-role-trust.json allows %v, want only sts:AssumeRole", actions)
	}
	for _, s := range p.Statement {
		if len(s.Principal) == 0 {
			t.Errorf("assume-role-trust.json statement %s names no Principal", s.Sid)
		}
		if _, ok := s.Condition["StringEquals"]["sts:ExternalId"]; !ok {
			t.Errorf("assume-role-trust.json statement %s has no StringEquals sts:ExternalId condition", s.Sid)
		}
	}
}
