package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/config"
	"github.com/abuse-responder/abuse-responder/internal/awstest"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/store"
)

// blockWorld is the seed's account in the EC2 fake: the instance in a
// subnet whose network ACL allows all egress at rule 100.
func blockWorld(t *testing.T) *awstest.EC2Fake {
	t.Helper()
	awstest.Env(t)
	return awstest.SeedWorld(t, awstest.SeedOptions{IngressAllow: true,
		GroupEgress: []awstest.SGRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}})
}

// blockConfig is hostConfigFile plus a [remediate] section.
func blockConfig(t *testing.T, endpoint, remediate string) string {
	t.Helper()
	webRoot, accessLog, _ := seedHost(t)
	path := hostConfigFile(t, endpoint, webRoot, accessLog)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, []byte("[remediate]\n"+remediate)...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func count(calls []string, action string) int {
	n := 0
	for _, c := range calls {
		if c == action {
			n++
		}
	}
	return n
}

// TestPlanApplyUnblock drives the commands a person uses by hand against
// the EC2 fake: plan changes nothing, apply blocks and records, a second
// apply changes nothing, blocks lists it, unblock restores the ACL.
func TestPlanApplyUnblock(t *testing.T) {
	f := blockWorld(t)
	cfg := blockConfig(t, f.URL(), "mode = \"block-then-confirm\"\nactions = [\"nacl\"]\nnacl_rule_band = [40, 89]\n")
	before, _ := f.NetworkACL("acl-a")

	code, out, errOut := runCmd(t, "plan", "--config", cfg, "testdata/seed-notice.eml")
	if code != 0 || !strings.Contains(out, "CreateNetworkAclEntry") || !strings.Contains(out, "203.0.113.44") {
		t.Fatalf("plan: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	if n := count(f.Calls(), "CreateNetworkAclEntry"); n != 0 {
		t.Fatalf("plan made %d CreateNetworkAclEntry calls, want none", n)
	}

	code, out, errOut = runCmd(t, "apply", "--config", cfg, "testdata/seed-notice.eml")
	if code != 0 || !strings.Contains(out, "blocked all egress to 203.0.113.44/32") || !strings.Contains(out, "verified") {
		t.Fatalf("apply: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	acl, _ := f.NetworkACL("acl-a")
	var deny *awstest.ACLEntry
	for i, e := range acl.Entries {
		if e.Egress && e.Action == "deny" {
			deny = &acl.Entries[i]
		}
	}
	// The report gives the port but not the protocol, and an ACL entry
	// cannot name a port without one: all traffic to the one address.
	if deny == nil || deny.CIDR != "203.0.113.44/32" || deny.RuleNumber < 40 || deny.RuleNumber > 89 || deny.Protocol != "-1" {
		t.Fatalf("ACL after apply = %+v, want an egress deny of all traffic to 203.0.113.44/32 numbered 40–89", acl.Entries)
	}

	creates := count(f.Calls(), "CreateNetworkAclEntry")
	if code, out, errOut := runCmd(t, "apply", "--config", cfg, "testdata/seed-notice.eml"); code != 0 {
		t.Fatalf("apply again: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	if n := count(f.Calls(), "CreateNetworkAclEntry"); n != creates {
		t.Errorf("apply again made %d more CreateNetworkAclEntry calls, want none", n-creates)
	}

	code, out, _ = runCmd(t, "cases", "--config", cfg, "show", "13051177299-1")
	if code != 0 || !strings.Contains(out, "blocks:") || !strings.Contains(out, "verified  13051177299-1:nacl:acl-a") {
		t.Errorf("cases show: exit %d, stdout %s; want the case's blocks", code, out)
	}

	code, out, _ = runCmd(t, "blocks", "--config", cfg)
	if code != 0 || !strings.Contains(out, "13051177299-1:nacl:acl-a") {
		t.Errorf("blocks: exit %d, stdout %s; want the case's NACL block", code, out)
	}

	code, out, errOut = runCmd(t, "unblock", "--config", cfg, "13051177299-1")
	if code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("unblock: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	after, _ := f.NetworkACL("acl-a")
	if !reflect.DeepEqual(after.Entries, before.Entries) {
		t.Errorf("ACL after unblock = %+v, want the original %+v", after.Entries, before.Entries)
	}
	if code, out, _ := runCmd(t, "blocks", "--config", cfg); code != 0 || !strings.Contains(out, "no active blocks") {
		t.Errorf("blocks after unblock: exit %d, stdout %s", code, out)
	}
}

// TestApplyRefusesProtectedTargets: a notice whose only target is on the
// allowlist makes apply change nothing and say why.
func TestApplyRefusesProtectedTargets(t *testing.T) {
	f := blockWorld(t)
	cfg := blockConfig(t, f.URL(), "actions = [\"nacl\"]\nallowlist = [\"203.0.113.0/24\"]\n")
	code, out, errOut := runCmd(t, "apply", "--config", cfg, "testdata/seed-notice.eml")
	if code != 0 || !strings.Contains(out, "allowlist") || !strings.Contains(out, "nothing to apply") {
		t.Errorf("apply on an allowlisted target: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	if n := count(f.Calls(), "CreateNetworkAclEntry"); n != 0 {
		t.Errorf("apply made %d CreateNetworkAclEntry calls on an allowlisted target", n)
	}
}

// TestApplyDryRun: dry_run plans and reports, changes nothing, records nothing.
func TestApplyDryRun(t *testing.T) {
	f := blockWorld(t)
	cfg := blockConfig(t, f.URL(), "actions = [\"nacl\"]\ndry_run = true\n")
	code, out, errOut := runCmd(t, "apply", "--config", cfg, "testdata/seed-notice.eml")
	if code != 0 || !strings.Contains(out, "dry run") {
		t.Fatalf("apply with dry_run: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	acl, _ := f.NetworkACL("acl-a")
	for _, e := range acl.Entries {
		if e.Action == "deny" {
			t.Errorf("dry run left a deny entry: %+v", e)
		}
	}
	if code, out, _ := runCmd(t, "blocks", "--config", cfg); code != 0 || !strings.Contains(out, "no active blocks") {
		t.Errorf("blocks after a dry run: exit %d, stdout %s", code, out)
	}
}

// TestStillActive is the expiry rule: a block is lifted only when the
// instance's flow logs cover the last day and show no traffic to its
// target; with traffic, or without flow logs, it stays.
func TestStillActive(t *testing.T) {
	f := blockWorld(t)
	now := time.Date(2026, 4, 21, 12, 0, 0, 0, time.UTC)
	webRoot, accessLog, _ := seedHost(t)
	cfg, err := config.Load(hostConfigFile(t, f.URL(), webRoot, accessLog))
	if err != nil {
		t.Fatal(err)
	}
	r, err := newRemediation(context.Background(), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	block := func(target string) store.Block {
		a := remediate.Action{Kind: remediate.KindNACL, InstanceID: "i-0a1b2c3d4e5f60718", Region: "eu-central-1",
			Account: "111122223333", Target: netip.MustParsePrefix(target + "/32")}
		doc, _ := json.Marshal(a)
		return store.Block{Key: "k", Action: doc}
	}
	ctx := context.Background()
	if !r.stillActive(ctx, block("203.0.113.44"), now) {
		t.Errorf("stillActive without any flow log = false, want true: no telemetry, no expiry")
	}

	f.AddFlowLog(awstest.FlowLog{ID: "fl-1", ResourceID: "subnet-a", LogGroup: "vpc-flow"})
	for i, dst := range []string{"203.0.113.44", "192.0.2.1"} {
		end := now.Add(-time.Duration(i+1) * time.Hour)
		f.PutLogEvents("vpc-flow", awstest.LogEvent{Stream: "eni-web-all", Timestamp: end,
			Message: fmt.Sprintf("2 111122223333 eni-web 10.0.1.5 %s 40000 443 6 3 180 %d %d REJECT OK", dst, end.Add(-time.Minute).Unix(), end.Unix())})
	}
	if !r.stillActive(ctx, block("203.0.113.44"), now) {
		t.Errorf("stillActive with REJECT records to the target in the last day = false, want true")
	}
	if r.stillActive(ctx, block("203.0.113.99"), now) {
		t.Errorf("stillActive with flow logs covering the day and nothing to the target = true, want false")
	}
}

func TestSnapshotIDs(t *testing.T) {
	state := []byte(`{"account":"1","region":"r","state":{"groups":{"eni-1":["sg-1"]},"snapshots":[{"volume_id":"vol-2","snapshot_id":"snap-2"},{"volume_id":"vol-1","snapshot_id":"snap-1"}]}}`)
	if got := snapshotIDs(state); !reflect.DeepEqual(got, []string{"snap-1", "snap-2"}) {
		t.Errorf("snapshotIDs = %q, want snap-1, snap-2", got)
	}
	if got := snapshotIDs(nil); got != nil {
		t.Errorf("snapshotIDs(nil) = %q", got)
	}
}
