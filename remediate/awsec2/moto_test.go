package awsec2_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/abuse-responder/abuse-responder/remediate"
)

func motoInput(w *motoWorld, kinds []remediate.Kind, targets ...string) remediate.Input {
	in := input(kinds)
	for _, tg := range targets {
		ip, port, _ := strings.Cut(tg, ":")
		switch port {
		case "":
			in.Targets = append(in.Targets, target(ip, "", 0))
		default:
			in.Targets = append(in.Targets, target(ip, "tcp", uint16(atoi(port))))
		}
	}
	in.Instances[0].ID = w.Instance
	in.Policy.QuarantineGroup = w.quarantine
	return in
}

func TestNACLOnMoto(t *testing.T) {
	w := newMotoWorld(t)
	ctx := context.Background()
	original := w.aclJSON(t)
	actions, refusals := mustPlan(t, w.backend, motoInput(w, naclOnly, "203.0.113.5:22", "198.51.100.7"))
	if len(actions) != 2 || len(refusals) != 0 {
		t.Fatalf("Plan = %+v, %+v; want 2 actions", actions, refusals)
	}
	for i, a := range actions {
		// 40 and 41: inside the band, before the allows at 100 and 110.
		if a.Resource != w.ACL || a.RuleNumber != int32(40+i) {
			t.Errorf("action %d = %s rule %d, want %s rule %d", i, a.Resource, a.RuleNumber, w.ACL, 40+i)
		}
	}
	var changes []remediate.Change
	for _, a := range actions {
		c, err := w.backend.Apply(ctx, a, false)
		if err != nil || !c.Made {
			t.Fatalf("Apply(%s) = made %v, %v", a.Key, c.Made, err)
		}
		changes = append(changes, c)
		if check, err := w.backend.Verify(ctx, a); err != nil || !check.Holds {
			t.Errorf("Verify(%s) = %+v, %v", a.Key, check, err)
		}
	}
	applied := w.aclJSON(t)
	if applied == original || !strings.Contains(applied, `"CidrBlock":"203.0.113.5/32"`) {
		t.Fatalf("ACL after Apply = %s", applied)
	}
	for _, a := range actions {
		if c, err := w.backend.Apply(ctx, a, false); err != nil || c.Made {
			t.Errorf("re-Apply(%s) = made %v, %v; want nothing made", a.Key, c.Made, err)
		}
	}
	if again := w.aclJSON(t); again != applied {
		t.Errorf("re-Apply changed the ACL:\n%s\nwant\n%s", again, applied)
	}
	for i := len(changes) - 1; i >= 0; i-- {
		if err := w.backend.Undo(ctx, changes[i]); err != nil {
			t.Fatalf("Undo(%s): %v", changes[i].Key, err)
		}
	}
	if restored := w.aclJSON(t); restored != original {
		t.Errorf("ACL after Undo:\n%s\nwant\n%s", restored, original)
	}
}

func TestSecurityGroupSwapOnMoto(t *testing.T) {
	w := newMotoWorld(t)
	ctx := context.Background()
	original := w.eniGroups(t)
	actions, refusals := mustPlan(t, w.backend, motoInput(w, []remediate.Kind{remediate.KindSecurityGroup}, "203.0.113.5:22"))
	if len(actions) != 1 || len(refusals) != 0 {
		t.Fatalf("Plan = %+v, %+v; want one swap", actions, refusals)
	}
	c, err := w.backend.Apply(ctx, actions[0], false)
	if err != nil || !c.Made {
		t.Fatalf("Apply = %+v, %v", c, err)
	}
	swapped := w.eniGroups(t)
	if len(swapped) != 1 || slices.Equal(swapped, original) {
		t.Fatalf("groups after Apply = %v, want one per-case group instead of %v", swapped, original)
	}
	if check, err := w.backend.Verify(ctx, actions[0]); err != nil || !check.Holds {
		t.Errorf("Verify = %+v, %v", check, err)
	}
	if again, err := w.backend.Apply(ctx, actions[0], false); err != nil || again.Made {
		t.Errorf("re-Apply = made %v calls %v, %v; want nothing", again.Made, again.Calls, err)
	}
	if err := w.backend.Undo(ctx, c); err != nil {
		t.Fatalf("Undo: %v", err)
	}
	if got := w.eniGroups(t); !slices.Equal(got, original) {
		t.Errorf("groups after Undo = %v, want %v", got, original)
	}
	out, err := w.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{swapped[0]}})
	if err == nil && len(out.SecurityGroups) > 0 {
		t.Errorf("per-case group %s still exists after Undo", swapped[0])
	}
}

func TestQuarantineOnMoto(t *testing.T) {
	w := newMotoWorld(t)
	ctx := context.Background()
	original := w.eniGroups(t)
	tagsBefore := w.instanceTags(t)
	actions, refusals := mustPlan(t, w.backend, motoInput(w, []remediate.Kind{remediate.KindQuarantine}, "203.0.113.5:22"))
	if len(actions) != 1 || len(refusals) != 0 {
		t.Fatalf("Plan = %+v, %+v", actions, refusals)
	}
	c, err := w.backend.Apply(ctx, actions[0], false)
	if err != nil || !c.Made {
		t.Fatalf("Apply = %+v, %v", c, err)
	}
	if got := w.eniGroups(t); !slices.Equal(got, []string{w.quarantine}) {
		t.Errorf("groups after Apply = %v, want only %s", got, w.quarantine)
	}
	if tags := w.instanceTags(t); tags["abuse-responder:case"] != "case-7" {
		t.Errorf("tags after Apply = %v, want the case", tags)
	}
	if check, err := w.backend.Verify(ctx, actions[0]); err != nil || !check.Holds {
		t.Errorf("Verify = %+v, %v", check, err)
	}
	if err := w.backend.Undo(ctx, c); err != nil {
		t.Fatalf("Undo: %v", err)
	}
	if got := w.eniGroups(t); !slices.Equal(got, original) {
		t.Errorf("groups after Undo = %v, want %v", got, original)
	}
	if tags := w.instanceTags(t); !maps.Equal(tags, tagsBefore) {
		t.Errorf("tags after Undo = %v, want %v", tags, tagsBefore)
	}
}
