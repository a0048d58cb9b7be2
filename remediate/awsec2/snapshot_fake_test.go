package awsec2_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/abuse-responder/abuse-responder/internal/awstest"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/remediate/awsec2"
)

// snapshotWorld is the fake world with two volumes on i-1, one on i-2
// and one detached, and a quarantine plan for i-1 that takes snapshots.
func snapshotWorld(t *testing.T) (*fakeWorld, remediate.Action) {
	t.Helper()
	w := newFakeWorld(t)
	w.fake.AddVolume(
		awstest.Volume{ID: "vol-1b", InstanceID: "i-1", Device: "/dev/xvdf", SizeGiB: 100},
		awstest.Volume{ID: "vol-1a", InstanceID: "i-1", SizeGiB: 8, Encrypted: true},
		awstest.Volume{ID: "vol-2", InstanceID: "i-2"},
		awstest.Volume{ID: "vol-free"},
	)
	in := input([]remediate.Kind{remediate.KindQuarantine}, target("203.0.113.5", "tcp", 22))
	in.Policy.Snapshots = true
	actions, refusals := mustPlan(t, w.backend, in)
	if len(actions) != 1 || len(refusals) != 0 {
		t.Fatalf("Plan = %+v, %+v; want one quarantine", actions, refusals)
	}
	return w, actions[0]
}

// snapshotAfter is the part of a quarantine Change.After about snapshots.
type snapshotAfter struct {
	Snapshots []struct {
		Volume   string `json:"volume_id"`
		Snapshot string `json:"snapshot_id"`
	} `json:"snapshots"`
}

func afterSnapshots(t *testing.T, c remediate.Change) map[string]string {
	t.Helper()
	var a snapshotAfter
	if err := json.Unmarshal(c.After, &a); err != nil {
		t.Fatalf("After %s: %v", c.After, err)
	}
	out := map[string]string{}
	for _, s := range a.Snapshots {
		out[s.Volume] = s.Snapshot
	}
	return out
}

func TestQuarantinePlanListsSnapshots(t *testing.T) {
	_, a := snapshotWorld(t)
	want := `ec2:CreateSnapshot VolumeId=vol-1a Description="abuse-responder case-7 forensic snapshot of vol-1a on i-1"` +
		` TagSpecification.1.ResourceType=snapshot TagSpecification.1.Tag.1.Key=abuse-responder:case TagSpecification.1.Tag.1.Value=case-7` +
		` TagSpecification.1.Tag.2.Key=abuse-responder:instance TagSpecification.1.Tag.2.Value=i-1`
	if len(a.Calls) < 4 || a.Calls[0] != want || !strings.HasPrefix(a.Calls[1], "ec2:CreateSnapshot VolumeId=vol-1b ") {
		t.Fatalf("Calls = %q; want the CreateSnapshot calls first, the first one\n%s", a.Calls, want)
	}
	if !strings.Contains(a.Reason, "forensic snapshots of vol-1a, vol-1b") || !strings.Contains(a.Reason, "unblock keeps them") {
		t.Errorf("Reason = %q; want the volumes and that unblock keeps the snapshots", a.Reason)
	}

	// Without the policy, the plan takes none.
	w := newFakeWorld(t)
	w.fake.AddVolume(awstest.Volume{ID: "vol-1a", InstanceID: "i-1"})
	actions, _ := mustPlan(t, w.backend, input([]remediate.Kind{remediate.KindQuarantine}))
	for _, c := range actions[0].Calls {
		if strings.Contains(c, "CreateSnapshot") {
			t.Errorf("without Policy.Snapshots the plan calls %s", c)
		}
	}
	if _, err := w.backend.Apply(context.Background(), actions[0], false); err != nil {
		t.Fatal(err)
	}
	if n := countCalls(w.fake, "DescribeSnapshots") + countCalls(w.fake, "CreateSnapshot"); n != 0 {
		t.Errorf("without Policy.Snapshots Apply made %d snapshot calls", n)
	}
}

func TestQuarantineSnapshotsBeforeSwapAndKeptByUndo(t *testing.T) {
	w, a := snapshotWorld(t)
	ctx := context.Background()
	original := eniGroups(t, w.fake, "eni-1", "eni-1b")

	c, err := w.backend.Apply(ctx, a, false)
	if err != nil || !c.Made {
		t.Fatalf("Apply = %+v, %v", c, err)
	}
	// Order: every snapshot before the instance is tagged or a group swapped.
	var order []string
	for _, call := range w.fake.CallLog() {
		switch call.Action {
		case "CreateSnapshot", "CreateTags", "ModifyNetworkInterfaceAttribute":
			order = append(order, call.Action)
		}
		if call.Action == "CreateSnapshot" {
			if got := call.Params.Get("Description"); !strings.HasPrefix(got, "abuse-responder case-7 forensic snapshot of vol-1") {
				t.Errorf("CreateSnapshot Description = %q", got)
			}
		}
	}
	want := []string{"CreateSnapshot", "CreateSnapshot", "CreateTags", "ModifyNetworkInterfaceAttribute", "ModifyNetworkInterfaceAttribute"}
	if !slices.Equal(order, want) {
		t.Errorf("calls in order %v, want %v", order, want)
	}
	snaps := w.fake.Snapshots()
	recorded := afterSnapshots(t, c)
	if len(snaps) != 2 || len(recorded) != 2 {
		t.Fatalf("snapshots %+v, recorded %v; want one per volume of i-1", snaps, recorded)
	}
	for _, s := range snaps {
		if s.Tags["abuse-responder:case"] != "case-7" || s.Tags["abuse-responder:instance"] != "i-1" || recorded[s.VolumeID] != s.ID {
			t.Errorf("snapshot %+v: want the case and instance tags and its ID in After %v", s, recorded)
		}
	}
	if !strings.Contains(strings.Join(c.Calls, "\n"), "-> "+recorded["vol-1a"]) {
		t.Errorf("Calls = %q; want the snapshot IDs", c.Calls)
	}

	// Applied again: the snapshots are found by their tags, none is made.
	again, err := w.backend.Apply(ctx, a, false)
	if err != nil || again.Made || countCalls(w.fake, "CreateSnapshot") != 2 {
		t.Errorf("re-Apply = %+v, %v, %d CreateSnapshot in all; want nothing made", again, err, countCalls(w.fake, "CreateSnapshot"))
	}
	if got := afterSnapshots(t, again); len(got) != 2 || got["vol-1b"] != recorded["vol-1b"] {
		t.Errorf("re-Apply After snapshots = %v, want %v", got, recorded)
	}

	// Undo restores the groups and keeps the evidence.
	if err := w.backend.Undo(ctx, c); err != nil {
		t.Fatalf("Undo: %v", err)
	}
	if got := eniGroups(t, w.fake, "eni-1", "eni-1b"); !slices.Equal(got["eni-1"], original["eni-1"]) || !slices.Equal(got["eni-1b"], original["eni-1b"]) {
		t.Errorf("groups after Undo = %v, want %v", got, original)
	}
	if n := len(w.fake.Snapshots()); n != 2 || slices.Contains(w.fake.Calls(), "DeleteSnapshot") {
		t.Errorf("after Undo %d snapshots; want both kept, never deleted", n)
	}
}

func TestQuarantineSnapshotsDryRun(t *testing.T) {
	w, a := snapshotWorld(t)
	c, err := w.backend.Apply(context.Background(), a, true)
	if err != nil || c.Made || !slices.Equal(c.Calls, a.Calls) {
		t.Fatalf("Apply(dry run) = %+v, %v; want nothing made and the plan's calls", c, err)
	}
	if n := len(w.fake.Snapshots()); n != 0 {
		t.Errorf("dry run made %d snapshots", n)
	}
	dry := 0
	for _, call := range w.fake.CallLog() {
		if call.Action == "CreateSnapshot" && call.Params.Get("DryRun") == "true" {
			dry++
		}
		if call.Action == "ModifyNetworkInterfaceAttribute" {
			t.Errorf("dry run swapped groups")
		}
	}
	if dry != 2 {
		t.Errorf("dry run asked CreateSnapshot DryRun=true %d times, want 2", dry)
	}
}

func TestQuarantineSnapshotFailureStopsBeforeSwap(t *testing.T) {
	w, a := snapshotWorld(t)
	ctx := context.Background()
	// The second CreateSnapshot is refused, as after a crash halfway.
	w.fake.BeforeNext("CreateSnapshot", func() {
		w.fake.BeforeNext("CreateSnapshot", func() { w.fake.FailNext("CreateSnapshot", "UnauthorizedOperation", 403, 1) })
	})
	_, err := w.backend.Apply(ctx, a, false)
	if err == nil || !awsec2.IsPermanent(err) {
		t.Fatalf("Apply = %v; want the permanent UnauthorizedOperation", err)
	}
	if n := countCalls(w.fake, "CreateTags") + countCalls(w.fake, "ModifyNetworkInterfaceAttribute"); n != 0 {
		t.Errorf("after the refused snapshot Apply made %d tag or group calls; want none", n)
	}
	// The next Apply finds vol-1a's snapshot and makes only vol-1b's.
	c, err := w.backend.Apply(ctx, a, false)
	if err != nil {
		t.Fatalf("Apply again: %v", err)
	}
	snaps := w.fake.Snapshots()
	if len(snaps) != 2 || snaps[0].VolumeID == snaps[1].VolumeID || len(afterSnapshots(t, c)) != 2 {
		t.Errorf("snapshots %+v, After %s; want one of each volume", snaps, c.After)
	}
}
