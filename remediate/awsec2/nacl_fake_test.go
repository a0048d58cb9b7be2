package awsec2_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/abuse-responder/abuse-responder/internal/awstest"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/remediate/awsec2"
)

var naclOnly = []remediate.Kind{remediate.KindNACL}

func TestNACLPlanApplyVerifyUndo(t *testing.T) {
	w := newFakeWorld(t)
	ctx := context.Background()
	original := egress(t, w.fake, "acl-1")
	in := input(naclOnly, target("203.0.113.5", "tcp", 22), target("198.51.100.7", "", 0), target("2001:db8::9", "udp", 53),
		target("203.0.113.5", "tcp", 22)) // a duplicate
	actions, refusals := mustPlan(t, w.backend, in)
	if len(refusals) != 0 || len(actions) != 3 {
		t.Fatalf("Plan = %d actions, refusals %v; want 3, none", len(actions), refusals)
	}
	want := []struct {
		key  string
		n    int32
		call string
	}{
		{"case-7:nacl:acl-1:203.0.113.5/32:tcp:22", 40,
			"ec2:CreateNetworkAclEntry NetworkAclId=acl-1 RuleNumber=40 Egress=true RuleAction=deny Protocol=6 CidrBlock=203.0.113.5/32 PortRange.From=22 PortRange.To=22"},
		{"case-7:nacl:acl-1:198.51.100.7/32:all:0", 41,
			"ec2:CreateNetworkAclEntry NetworkAclId=acl-1 RuleNumber=41 Egress=true RuleAction=deny Protocol=-1 CidrBlock=198.51.100.7/32"},
		{"case-7:nacl:acl-1:2001:db8::9/128:udp:53", 42,
			"ec2:CreateNetworkAclEntry NetworkAclId=acl-1 RuleNumber=42 Egress=true RuleAction=deny Protocol=17 Ipv6CidrBlock=2001:db8::9/128 PortRange.From=53 PortRange.To=53"},
	}
	for i, a := range actions {
		if a.Key != want[i].key || a.RuleNumber != want[i].n || !slices.Equal(a.Calls, []string{want[i].call}) ||
			a.Kind != remediate.KindNACL || a.Resource != "acl-1" || a.InstanceID != "i-1" || a.Region != awstest.Region {
			t.Errorf("action %d = %+v;\nwant key %s rule %d call %s", i, a, want[i].key, want[i].n, want[i].call)
		}
	}
	if countCalls(w.fake, "CreateNetworkAclEntry") != 0 {
		t.Fatal("Plan made a mutating call")
	}

	var changes []remediate.Change
	for _, a := range actions {
		c, err := w.backend.Apply(ctx, a, false)
		if err != nil || !c.Made || c.Key != a.Key {
			t.Fatalf("Apply(%s) = made %v key %s, %v; want made", a.Key, c.Made, c.Key, err)
		}
		changes = append(changes, c)
		check, err := w.backend.Verify(ctx, a)
		if err != nil || !check.Holds {
			t.Errorf("Verify(%s) = %+v, %v; want holds", a.Key, check, err)
		}
	}
	applied := egress(t, w.fake, "acl-1")
	if len(applied) != len(original)+3 {
		t.Fatalf("egress after Apply = %v", applied)
	}
	var before struct {
		ACLID   string            `json:"acl_id"`
		Entries []json.RawMessage `json:"entries"`
	}
	if err := json.Unmarshal(changes[0].Before, &before); err != nil || before.ACLID != "acl-1" || len(before.Entries) != 6 {
		t.Errorf("Before = %s (%v); want acl-1's 6 entries", changes[0].Before, err)
	}

	// Again, as after a crash: nothing changes.
	creates := countCalls(w.fake, "CreateNetworkAclEntry")
	for _, a := range actions {
		c, err := w.backend.Apply(ctx, a, false)
		if err != nil || c.Made || len(c.Calls) != 0 {
			t.Errorf("re-Apply(%s) = made %v calls %v, %v; want nothing made", a.Key, c.Made, c.Calls, err)
		}
	}
	if countCalls(w.fake, "CreateNetworkAclEntry") != creates || !slices.Equal(egress(t, w.fake, "acl-1"), applied) {
		t.Error("re-Apply changed the ACL")
	}
	// A plan made now is the same plan: its hash, and so the approval, still hold.
	again, _ := mustPlan(t, w.backend, in)
	for i := range actions {
		if again[i].Key != actions[i].Key || again[i].RuleNumber != actions[i].RuleNumber || again[i].Reason != actions[i].Reason {
			t.Errorf("plan after Apply: %+v, want %+v", again[i], actions[i])
		}
	}

	for i := len(changes) - 1; i >= 0; i-- {
		if err := w.backend.Undo(ctx, changes[i]); err != nil {
			t.Fatalf("Undo(%s): %v", changes[i].Key, err)
		}
	}
	if got := egress(t, w.fake, "acl-1"); !slices.Equal(got, original) {
		t.Errorf("egress after Undo = %v, want %v", got, original)
	}
	check, err := w.backend.Verify(ctx, actions[0])
	if err != nil || check.Holds {
		t.Errorf("Verify after Undo = %+v, %v; want not holding", check, err)
	}
	if err := w.backend.Undo(ctx, changes[0]); err != nil {
		t.Errorf("second Undo: %v, want nil", err)
	}
}

func TestNACLDryRunChangesNothing(t *testing.T) {
	w := newFakeWorld(t)
	original := egress(t, w.fake, "acl-1")
	actions, _ := mustPlan(t, w.backend, input(naclOnly, target("203.0.113.5", "tcp", 22)))
	c, err := w.backend.Apply(context.Background(), actions[0], true)
	if err != nil || c.Made || !slices.Equal(c.Calls, actions[0].Calls) {
		t.Fatalf("Apply(dry run) = made %v calls %v, %v; want not made, the planned calls", c.Made, c.Calls, err)
	}
	if got := egress(t, w.fake, "acl-1"); !slices.Equal(got, original) {
		t.Errorf("egress after a dry run = %v, want %v", got, original)
	}
	log := w.fake.CallLog()
	last := log[len(log)-1]
	if last.Action != "CreateNetworkAclEntry" || last.Params.Get("DryRun") != "true" || last.Params.Get("RuleNumber") != "40" {
		t.Errorf("last call = %s %v, want CreateNetworkAclEntry with DryRun=true", last.Action, last.Params)
	}
	if err := w.backend.Undo(context.Background(), c); err != nil || countCalls(w.fake, "DeleteNetworkAclEntry") != 0 {
		t.Errorf("Undo(dry run) = %v, deletes %d; want nothing", err, countCalls(w.fake, "DeleteNetworkAclEntry"))
	}
}

func TestNACLThrottlingIsRetried(t *testing.T) {
	w := newFakeWorld(t)
	b := awsec2.NewWithClient(fakeClient(t, w.fake, 3)).WithRuleBand(band)
	actions, _ := mustPlan(t, b, input(naclOnly, target("203.0.113.5", "tcp", 22)))
	w.fake.FailNext("CreateNetworkAclEntry", "RequestLimitExceeded", 503, 2)
	c, err := b.Apply(context.Background(), actions[0], false)
	if err != nil || !c.Made {
		t.Fatalf("Apply after two throttles = made %v, %v; want made", c.Made, err)
	}
	if n := countCalls(w.fake, "CreateNetworkAclEntry"); n != 3 {
		t.Errorf("CreateNetworkAclEntry calls = %d, want 3 (2 throttled, 1 served)", n)
	}
}

func TestNACLQuotaErrorIsPermanent(t *testing.T) {
	w := newFakeWorld(t)
	actions, _ := mustPlan(t, w.backend, input(naclOnly, target("203.0.113.5", "tcp", 22)))
	w.fake.SetNACLQuota(2) // acl-1 holds 2 IPv4 egress entries already
	_, err := w.backend.Apply(context.Background(), actions[0], false)
	if err == nil || !awsec2.IsPermanent(err) || !remediate.IsPermanent(err) || !strings.Contains(err.Error(), "create NACL entry 40 in acl-1") {
		t.Fatalf("Apply over the quota = %v; want a permanent error naming the entry", err)
	}
	w.fake.FailNext("DescribeNetworkAcls", "RequestLimitExceeded", 503, 1)
	_, err = w.backend.Apply(context.Background(), actions[0], false)
	if err == nil || awsec2.IsPermanent(err) {
		t.Errorf("Apply throttled past the retries = %v; want a temporary error", err)
	}
}

func TestNACLRuleNumberRace(t *testing.T) {
	w := newFakeWorld(t)
	actions, _ := mustPlan(t, w.backend, input(naclOnly, target("203.0.113.5", "tcp", 22)))
	foreign := awstest.ACLEntry{RuleNumber: 40, Egress: true, Action: "deny", Protocol: "6", CIDR: "192.0.2.66/32", FromPort: 25, ToPort: 25}
	// Someone else takes 40 after Apply has read the ACL.
	w.fake.BeforeNext("CreateNetworkAclEntry", func() { w.fake.AddNetworkACLEntry("acl-1", foreign) })
	c, err := w.backend.Apply(context.Background(), actions[0], false)
	if err != nil || !c.Made {
		t.Fatalf("Apply = made %v, %v; want made under another number", c.Made, err)
	}
	var after struct {
		Entry struct {
			Number int32 `json:"rule_number"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(c.After, &after); err != nil || after.Entry.Number != 41 {
		t.Fatalf("After = %s; want rule 41", c.After)
	}
	log := w.fake.CallLog()
	var faults []string
	for _, call := range log {
		if call.Action == "CreateNetworkAclEntry" {
			faults = append(faults, call.Params.Get("RuleNumber"))
		}
	}
	if !slices.Equal(faults, []string{"40", "41"}) {
		t.Errorf("CreateNetworkAclEntry rule numbers = %v, want [40 41]", faults)
	}
	check, err := w.backend.Verify(context.Background(), actions[0])
	if err != nil || !check.Holds || !strings.Contains(check.Detail, "entry 41") {
		t.Errorf("Verify = %+v, %v; want entry 41 holding", check, err)
	}
	if err := w.backend.Undo(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if got := egress(t, w.fake, "acl-1"); !slices.Contains(got, "40 deny 6 192.0.2.66/32 25-25") || slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "41 ") }) {
		t.Errorf("egress after Undo = %v; want the foreign 40 kept and our 41 gone", got)
	}
}

func TestNACLNoNumberBeforeFirstAllow(t *testing.T) {
	w := newFakeWorld(t)
	w.fake.AddNetworkACLEntry("acl-1", awstest.ACLEntry{RuleNumber: 30, Egress: true, Action: "allow", Protocol: "6", CIDR: "203.0.113.0/24", FromPort: 0, ToPort: 1024})
	w.fake.AddNetworkACLEntry("acl-1", awstest.ACLEntry{RuleNumber: 20, Egress: true, Action: "allow", Protocol: "17", CIDR: "0.0.0.0/0", FromPort: 53, ToPort: 53})
	actions, refusals := mustPlan(t, w.backend, input(naclOnly, target("203.0.113.5", "tcp", 22), target("198.51.100.7", "tcp", 22)))
	// 203.0.113.5 tcp/22 is allowed at 30, before the band; 198.51.100.7
	// is not matched by 30 nor by the UDP rule 20, so 40 works for it.
	if len(actions) != 1 || actions[0].Target.String() != "198.51.100.7/32" || actions[0].RuleNumber != 40 {
		t.Errorf("actions = %+v; want one, 198.51.100.7 at 40", actions)
	}
	if len(refusals) != 1 || refusals[0].What != "203.0.113.5 port 22/tcp" ||
		!strings.Contains(refusals[0].Reason, "no free rule number in the band 40-89 of acl-1 before its first allow entry that matches this traffic (rule 30)") {
		t.Errorf("refusals = %+v; want 203.0.113.5 refused for rule 30", refusals)
	}
}

func TestNACLQuotaMergesThenSpills(t *testing.T) {
	w := newFakeWorld(t)
	in := input(naclOnly, target("203.0.113.4", "tcp", 22), target("203.0.113.5", "tcp", 22), target("203.0.113.6", "tcp", 22),
		target("203.0.113.7", "tcp", 22), target("203.0.113.9", "tcp", 22), target("203.0.113.8", "udp", 22))
	in.Policy.NACLQuota = 5 // acl-1 holds 2 IPv4 egress entries: room for 3
	actions, refusals := mustPlan(t, w.backend, in)
	var got []string
	for _, a := range actions {
		got = append(got, a.Target.String()+"/"+a.Protocol)
	}
	if !slices.Equal(got, []string{"203.0.113.4/30/tcp", "203.0.113.9/32/tcp", "203.0.113.8/32/udp"}) || len(refusals) != 0 {
		t.Fatalf("merged plan = %v, refusals %v", got, refusals)
	}
	if !strings.Contains(actions[0].Reason, "merged because acl-1 has room for 3 more IPv4 egress entries (quota 5)") {
		t.Errorf("reason = %q, want the merge explained", actions[0].Reason)
	}

	in.Policy.NACLQuota = 3 // room for 1: the /30 fits, the rest spills
	actions, refusals = mustPlan(t, w.backend, in)
	if len(actions) != 1 || actions[0].Target.String() != "203.0.113.4/30" || len(refusals) != 2 {
		t.Fatalf("full plan = %+v, refusals %+v; want the /30 and two refusals", actions, refusals)
	}
	for _, r := range refusals {
		if !strings.Contains(r.Reason, "quota full: acl-1 holds 3 of 3 IPv4 egress entries; block it with nftables or security-group") {
			t.Errorf("refusal = %+v, want quota full", r)
		}
	}
	if _, err := w.backend.Apply(context.Background(), actions[0], false); err != nil {
		t.Fatal(err)
	}
	if got := egress(t, w.fake, "acl-1"); !slices.Contains(got, "40 deny 6 203.0.113.4/30 22-22") {
		t.Errorf("egress = %v, want the /30 at 40", got)
	}
}

func TestProtectTagRefusesThePlan(t *testing.T) {
	w := newFakeWorld(t)
	in := input([]remediate.Kind{remediate.KindNACL, remediate.KindSecurityGroup, remediate.KindQuarantine}, target("203.0.113.5", "tcp", 22))
	in.Instances = append(in.Instances, remediate.InstanceRef{ID: "i-2", Region: awstest.Region})
	actions, refusals := mustPlan(t, w.backend, in)
	if len(actions) != 0 || len(refusals) != 1 || refusals[0].What != "i-2" ||
		!strings.Contains(refusals[0].Reason, `instance i-2 carries the protect tag "abuse-responder:protect"`) || !refusals[0].Stop {
		t.Errorf("Plan = %+v, %+v; want no actions and i-2 refused", actions, refusals)
	}
}

func TestNACLUndoLeavesAReplacedEntry(t *testing.T) {
	w := newFakeWorld(t)
	ctx := context.Background()
	actions, _ := mustPlan(t, w.backend, input(naclOnly, target("203.0.113.5", "tcp", 22)))
	c, err := w.backend.Apply(ctx, actions[0], false)
	if err != nil {
		t.Fatal(err)
	}
	// An operator replaces entry 40 with a rule of their own.
	client := fakeClient(t, w.fake, 1)
	if _, err := client.DeleteNetworkAclEntry(ctx, &ec2.DeleteNetworkAclEntryInput{NetworkAclId: aws.String("acl-1"), RuleNumber: aws.Int32(40), Egress: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateNetworkAclEntry(ctx, &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String("acl-1"), RuleNumber: aws.Int32(40),
		Egress: aws.Bool(true), RuleAction: types.RuleActionDeny, Protocol: aws.String("-1"), CidrBlock: aws.String("192.0.2.0/24")}); err != nil {
		t.Fatal(err)
	}
	deletes := countCalls(w.fake, "DeleteNetworkAclEntry")
	if err := w.backend.Undo(ctx, c); err != nil {
		t.Fatalf("Undo: %v", err)
	}
	if countCalls(w.fake, "DeleteNetworkAclEntry") != deletes || !slices.Contains(egress(t, w.fake, "acl-1"), "40 deny -1 192.0.2.0/24 0-0") {
		t.Errorf("Undo deleted someone else's entry: %v", egress(t, w.fake, "acl-1"))
	}
}

func TestNACLUndoByKeyAfterACrash(t *testing.T) {
	w := newFakeWorld(t)
	ctx := context.Background()
	original := egress(t, w.fake, "acl-1")
	actions, _ := mustPlan(t, w.backend, input(naclOnly, target("2001:db8::9", "", 0)))
	if _, err := w.backend.Apply(ctx, actions[0], false); err != nil {
		t.Fatal(err)
	}
	// The Change was never recorded: Undo gets only the key.
	if err := w.backend.Undo(ctx, remediate.Change{Key: actions[0].Key, Kind: remediate.KindNACL}); err != nil {
		t.Fatalf("Undo by key: %v", err)
	}
	if got := egress(t, w.fake, "acl-1"); !slices.Equal(got, original) {
		t.Errorf("egress after Undo by key = %v, want %v", got, original)
	}
}
