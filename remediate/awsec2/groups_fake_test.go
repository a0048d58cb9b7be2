package awsec2_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/abuse-responder/abuse-responder/internal/awstest"
	"github.com/abuse-responder/abuse-responder/remediate"
)

// ruleStrings lists a fake group's rules as "proto from-to dest".
func ruleStrings(rules []awstest.SGRule) []string {
	var out []string
	for _, r := range rules {
		for _, d := range slices.Concat(r.CIDRs, r.IPv6CIDRs, r.Groups) {
			out = append(out, fmt.Sprintf("%s %d-%d %s", r.Protocol, r.FromPort, r.ToPort, d))
		}
	}
	slices.Sort(out)
	return out
}

func eniGroups(t *testing.T, f *awstest.EC2Fake, ids ...string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, id := range ids {
		e, ok := f.ENIByID(id)
		if !ok {
			t.Fatalf("no ENI %s", id)
		}
		out[id] = e.Groups
	}
	return out
}

func TestSecurityGroupSwapAndUndo(t *testing.T) {
	w := newFakeWorld(t)
	ctx := context.Background()
	originalENIs := eniGroups(t, w.fake, "eni-1", "eni-1b")
	web, _ := w.fake.SecurityGroupByID("sg-web")
	in := input([]remediate.Kind{remediate.KindSecurityGroup}, target("203.0.113.5", "tcp", 22), target("198.51.100.7", "udp", 53),
		target("198.51.100.8", "tcp", 22))
	actions, refusals := mustPlan(t, w.backend, in)
	if len(actions) != 2 || len(refusals) != 0 || actions[0].Key != "case-7:security-group:i-1:tcp/22" || actions[1].Key != "case-7:security-group:i-1:udp/53" {
		t.Fatalf("Plan = %+v, %+v; want tcp/22 and udp/53 for i-1", actions, refusals)
	}

	dry, err := w.backend.Apply(ctx, actions[0], true)
	if err != nil || dry.Made || len(dry.Calls) == 0 || countCalls(w.fake, "ModifyNetworkInterfaceAttribute") != 0 {
		t.Fatalf("Apply(dry run) = %+v, %v; want nothing changed and the calls", dry, err)
	}

	var changes []remediate.Change
	for _, a := range actions {
		c, err := w.backend.Apply(ctx, a, false)
		if err != nil || !c.Made {
			t.Fatalf("Apply(%s) = made %v, %v", a.Key, c.Made, err)
		}
		changes = append(changes, c)
	}
	swapped := eniGroups(t, w.fake, "eni-1", "eni-1b")
	id := swapped["eni-1"][0]
	if len(swapped["eni-1"]) != 1 || !slices.Equal(swapped["eni-1b"], []string{id}) || id == "sg-web" {
		t.Fatalf("ENI groups after Apply = %v; want one new group on both", swapped)
	}
	g, _ := w.fake.SecurityGroupByID(id)
	wantEgress := []string{"icmp -1--1 0.0.0.0/0", "tcp 0-21 0.0.0.0/0", "tcp 23-65535 0.0.0.0/0", "udp 0-52 0.0.0.0/0", "udp 54-65535 0.0.0.0/0"}
	if got := ruleStrings(g.Egress); !slices.Equal(got, wantEgress) || g.Name != "abuse-responder-case-7-i-1" {
		t.Errorf("per-case group %s egress = %v, want %v", g.Name, got, wantEgress)
	}
	if got := ruleStrings(g.Ingress); !slices.Equal(got, []string{"tcp 443-443 0.0.0.0/0"}) {
		t.Errorf("per-case group ingress = %v, want sg-web's", got)
	}
	if after, _ := w.fake.SecurityGroupByID("sg-web"); !slices.Equal(ruleStrings(after.Egress), ruleStrings(web.Egress)) {
		t.Error("Apply changed the shared group sg-web")
	}
	for _, a := range actions {
		if check, err := w.backend.Verify(ctx, a); err != nil || !check.Holds {
			t.Errorf("Verify(%s) = %+v, %v", a.Key, check, err)
		}
		if c, err := w.backend.Apply(ctx, a, false); err != nil || c.Made {
			t.Errorf("re-Apply(%s) = made %v calls %v, %v; want nothing", a.Key, c.Made, c.Calls, err)
		}
	}

	// The first Undo comes from a process that never recorded the Change:
	// the per-case group's tags know the groups before.
	undos := append([]remediate.Change{{Key: actions[0].Key, Kind: remediate.KindSecurityGroup}}, changes...)
	for _, c := range undos {
		if err := w.backend.Undo(ctx, c); err != nil {
			t.Fatalf("Undo(%s): %v", c.Key, err)
		}
	}
	if got := eniGroups(t, w.fake, "eni-1", "eni-1b"); !maps.EqualFunc(got, originalENIs, slices.Equal[[]string]) {
		t.Errorf("ENI groups after Undo = %v, want %v", got, originalENIs)
	}
	if _, exists := w.fake.SecurityGroupByID(id); exists {
		t.Errorf("per-case group %s still exists after Undo", id)
	}
}

func TestSecurityGroupNotNeededWhenEgressIsClosed(t *testing.T) {
	w := newFakeWorld(t)
	w.fake.AddSecurityGroup(awstest.SecurityGroup{ID: "sg-closed", Name: "closed", VPCID: "vpc-1",
		Egress: []awstest.SGRule{{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDRs: []string{"0.0.0.0/0"}}}})
	w.fake.AddInstance(awstest.Instance{ID: "i-3", VPCID: "vpc-1", SubnetID: "subnet-1"})
	w.fake.AddENI(awstest.ENI{ID: "eni-3", SubnetID: "subnet-1", VPCID: "vpc-1", InstanceID: "i-3", Groups: []string{"sg-closed"}})
	in := input([]remediate.Kind{remediate.KindSecurityGroup}, target("203.0.113.5", "tcp", 22))
	in.Instances[0].ID = "i-3"
	if actions, _ := mustPlan(t, w.backend, in); len(actions) != 0 {
		t.Errorf("Plan = %+v; want nothing, egress tcp/22 is already closed", actions)
	}
}

func TestQuarantineAndUndo(t *testing.T) {
	w := newFakeWorld(t)
	ctx := context.Background()
	originalENIs := eniGroups(t, w.fake, "eni-1", "eni-1b")
	inst, _ := w.fake.InstanceByID("i-1")
	originalTags := inst.Tags
	actions, refusals := mustPlan(t, w.backend, input([]remediate.Kind{remediate.KindQuarantine}, target("203.0.113.5", "tcp", 22)))
	if len(actions) != 1 || len(refusals) != 0 || actions[0].Key != "case-7:quarantine:i-1" || !slices.Equal(actions[0].GroupIDs, []string{"sg-quarantine"}) {
		t.Fatalf("Plan = %+v, %+v", actions, refusals)
	}
	a := actions[0]
	if c, err := w.backend.Apply(ctx, a, true); err != nil || c.Made || countCalls(w.fake, "ModifyNetworkInterfaceAttribute") != 0 {
		t.Fatalf("Apply(dry run) = %+v, %v; want nothing changed", c, err)
	}
	c, err := w.backend.Apply(ctx, a, false)
	if err != nil || !c.Made {
		t.Fatalf("Apply = %+v, %v", c, err)
	}
	got := eniGroups(t, w.fake, "eni-1", "eni-1b")
	if !slices.Equal(got["eni-1"], []string{"sg-quarantine"}) || !slices.Equal(got["eni-1b"], []string{"sg-quarantine"}) {
		t.Errorf("ENI groups = %v, want sg-quarantine only", got)
	}
	inst, _ = w.fake.InstanceByID("i-1")
	if inst.Tags["abuse-responder:case"] != "case-7" || inst.Tags["abuse-responder:groups:eni-1"] != "sg-web,sg-ssh" {
		t.Errorf("tags = %v, want the case and the groups before", inst.Tags)
	}
	if check, err := w.backend.Verify(ctx, a); err != nil || !check.Holds {
		t.Errorf("Verify = %+v, %v", check, err)
	}
	if again, err := w.backend.Apply(ctx, a, false); err != nil || again.Made || string(again.Before) != string(c.Before) {
		t.Errorf("re-Apply = made %v before %s, %v; want nothing made, the same Before", again.Made, again.Before, err)
	}

	// Undo from another process that never recorded the Change.
	for _, undo := range []remediate.Change{{Key: a.Key, Kind: remediate.KindQuarantine}, c} {
		if err := w.backend.Undo(ctx, undo); err != nil {
			t.Fatalf("Undo: %v", err)
		}
	}
	if got := eniGroups(t, w.fake, "eni-1", "eni-1b"); !maps.EqualFunc(got, originalENIs, slices.Equal[[]string]) {
		t.Errorf("ENI groups after Undo = %v, want %v", got, originalENIs)
	}
	inst, _ = w.fake.InstanceByID("i-1")
	if !maps.Equal(inst.Tags, originalTags) {
		t.Errorf("tags after Undo = %v, want %v", inst.Tags, originalTags)
	}
}

func TestQuarantineRefusals(t *testing.T) {
	w := newFakeWorld(t)
	in := input([]remediate.Kind{remediate.KindQuarantine}, target("203.0.113.5", "tcp", 22))
	in.Policy.QuarantineGroup = "sg-missing"
	if _, refusals := mustPlan(t, w.backend, in); len(refusals) != 1 || !strings.Contains(refusals[0].Reason, "does not exist in vpc-1") {
		t.Errorf("refusals = %+v; want the missing group named", refusals)
	}
}
