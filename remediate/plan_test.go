package remediate

import (
	"context"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/abuse-responder/abuse-responder/abuse"
)

func testInput(targets ...abuse.Target) Input {
	return Input{
		CaseID:    "c1",
		Type:      abuse.TypePortScan,
		Targets:   targets,
		Instances: []InstanceRef{{ID: "i-1", Region: "eu-central-1", Account: "111122223333"}},
		Policy: Policy{
			Kinds:     []Kind{KindNACL},
			Allowlist: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		},
	}
}

func TestBuildPlanOnlyProtectedTargets(t *testing.T) {
	mem := newMem(KindNACL, KindQuarantine)
	in := testInput(target("10.0.0.5", 22, "tcp"), target("192.0.2.9", 80, "tcp"))
	in.Policy.Kinds = []Kind{KindNACL, KindQuarantine}
	plan, err := BuildPlan(context.Background(), in, []Backend{mem})
	if err != nil {
		t.Fatalf("BuildPlan = %v", err)
	}
	if len(plan.Actions) != 0 || plan.Hash != HashActions(nil) {
		t.Errorf("BuildPlan(only protected) actions = %v, hash %s, want none", plan.Actions, plan.Hash)
	}
	want := []Refusal{
		{What: "10.0.0.5 port 22/tcp", Reason: "10.0.0.5 is in a private range (10.0.0.0/8), never blocked"},
		{What: "192.0.2.9 port 80/tcp", Reason: "192.0.2.9 is in remediate.allowlist (192.0.2.0/24)"},
	}
	if !reflect.DeepEqual(plan.Refused, want) {
		t.Errorf("BuildPlan(only protected) refused %+v, want %+v", plan.Refused, want)
	}
	if text := strings.Join(plan.Text(), "\n"); !strings.Contains(text, "no change") || !strings.Contains(text, "10.0.0.5 is in a private range") {
		t.Errorf("Plan.Text() = %q, want no change and the reasons", text)
	}
	doc, _ := json.Marshal(plan)
	if !strings.Contains(string(doc), `"actions":[]`) || !strings.Contains(string(doc), `"case_id":"c1"`) {
		t.Errorf("plan JSON = %s, want snake_case keys and [] for no actions", doc)
	}
}

func TestBuildPlanKindOrderAndRefusals(t *testing.T) {
	// One backend for the host, one for EC2, listed in the other order than
	// the policy's kinds; the policy's order wins.
	host := newMem(KindNftables)
	ec2 := newMem(KindNACL, KindSecurityGroup, KindQuarantine)
	ec2.extra = []Action{
		memAction("c1", KindNACL, netip.MustParsePrefix("0.0.0.0/0"), "", 0, 50),
		memAction("c1", KindNACL, netip.MustParsePrefix("8.8.0.0/16"), "udp", 53, 51),
		memAction("c1", KindSecurityGroup, netip.MustParsePrefix("198.51.100.0/24"), "tcp", 22, 0), // not asked
	}
	in := testInput(target("203.0.113.5", 22, "tcp"), target("2001:db8::5", 0, ""))
	in.Policy.Kinds = []Kind{KindNACL, KindNftables, KindQuarantine}
	plan, err := BuildPlan(context.Background(), in, []Backend{host, ec2})
	if err != nil {
		t.Fatalf("BuildPlan = %v", err)
	}
	var kinds []Kind
	for _, a := range plan.Actions {
		kinds = append(kinds, a.Kind)
	}
	want := []Kind{KindNACL, KindNACL, KindNftables, KindNftables, KindQuarantine, KindQuarantine}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("BuildPlan kinds = %v, want %v (the policy's order)", kinds, want)
	}
	var reasons []string
	for _, r := range plan.Refused {
		reasons = append(reasons, r.Reason)
	}
	got := strings.Join(reasons, "\n")
	for _, w := range []string{"0.0.0.0/0 would block every address", "8.8.0.0/16 overlaps 8.8.8.8/32", `kind "security-group" was not asked`} {
		if !strings.Contains(got, w) {
			t.Errorf("BuildPlan refusals = %q, want one with %q", got, w)
		}
	}

	// A configured kind with no backend is refused, the rest stands.
	in.Policy.Kinds = []Kind{KindNACL, KindNftables}
	plan, err = BuildPlan(context.Background(), in, []Backend{ec2})
	if err != nil || len(plan.Actions) != 2 || plan.Refused[len(plan.Refused)-1].What != "nftables" {
		t.Errorf("BuildPlan(no nft backend) = %d actions, %+v, %v, want the 2 NACL actions and a refusal of nftables", len(plan.Actions), plan.Refused, err)
	}
}

func TestBuildPlanMaxActions(t *testing.T) {
	var targets []abuse.Target
	for i := range 21 {
		targets = append(targets, abuse.Target{IP: netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}), Port: 22, Protocol: "tcp"})
	}
	mem := newMem(KindNACL)
	plan, err := BuildPlan(context.Background(), testInput(targets...), []Backend{mem})
	if err != nil {
		t.Fatalf("BuildPlan = %v", err)
	}
	if len(plan.Actions) != 0 || len(plan.Refused) != 1 || plan.Refused[0].What != "plan" ||
		!strings.Contains(plan.Refused[0].Reason, "21 actions exceed the limit of 20") {
		t.Errorf("BuildPlan(21 targets, default limit) = %d actions, %+v, want refused whole", len(plan.Actions), plan.Refused)
	}
	in := testInput(targets...)
	in.Policy.MaxActions = 21
	if plan, _ := BuildPlan(context.Background(), in, []Backend{mem}); len(plan.Actions) != 21 {
		t.Errorf("BuildPlan(21 targets, MaxActions 21) = %d actions, want 21", len(plan.Actions))
	}
}

func TestPlanHash(t *testing.T) {
	in := testInput(target("203.0.113.5", 22, "tcp"), target("203.0.113.6", 23, "tcp"))
	build := func() Plan {
		t.Helper()
		p, err := BuildPlan(context.Background(), in, []Backend{newMem(KindNACL)})
		if err != nil {
			t.Fatalf("BuildPlan = %v", err)
		}
		return p
	}
	p1, p2 := build(), build()
	if p1.Hash == "" || p1.Hash != p2.Hash || len(p1.Hash) != 64 {
		t.Fatalf("BuildPlan twice: hashes %q and %q, want the same sha256", p1.Hash, p2.Hash)
	}
	changed := func(f func(a *Action)) string {
		as := append([]Action(nil), p1.Actions...)
		a := as[0]
		a.GroupIDs = append([]string(nil), a.GroupIDs...)
		f(&a)
		as[0] = a
		return HashActions(as)
	}
	for name, f := range map[string]func(a *Action){
		"rule number": func(a *Action) { a.RuleNumber++ },
		"port":        func(a *Action) { a.Port = 2222 },
		"protocol":    func(a *Action) { a.Protocol = "udp" },
		"target":      func(a *Action) { a.Target = netip.MustParsePrefix("203.0.113.0/24") },
		"resource":    func(a *Action) { a.Resource = "acl-2" },
		"kind":        func(a *Action) { a.Kind = KindNftables },
		"key":         func(a *Action) { a.Key += "x" },
		"group ids":   func(a *Action) { a.GroupIDs = []string{"sg-1"} },
	} {
		if h := changed(f); h == p1.Hash {
			t.Errorf("HashActions after changing the %s = the old hash, want a new one", name)
		}
	}
	for name, f := range map[string]func(a *Action){
		"reason": func(a *Action) { a.Reason = "reworded" },
		"calls":  func(a *Action) { a.Calls = []string{"rendered differently"} },
	} {
		if h := changed(f); h != p1.Hash {
			t.Errorf("HashActions after changing the %s = a new hash, want the old one", name)
		}
	}
	// Group IDs are a set.
	a, b := p1.Actions[0], p1.Actions[0]
	a.GroupIDs, b.GroupIDs = []string{"sg-1", "sg-2"}, []string{"sg-2", "sg-1"}
	if HashActions([]Action{a}) != HashActions([]Action{b}) {
		t.Errorf("HashActions differs with the group IDs' order, want the same")
	}
}

func TestPlanText(t *testing.T) {
	a := memAction("c1", KindNACL, netip.MustParsePrefix("203.0.113.5/32"), "tcp", 22, 41)
	a.Reason = "port scan reported by AWS"
	a.Calls = []string{"CreateNetworkAclEntry NetworkAclId=acl-1 RuleNumber=41 Egress=true RuleAction=deny"}
	q := Action{Key: "c1:quarantine:i-1", Kind: KindQuarantine, InstanceID: "i-1", Resource: "i-1", GroupIDs: []string{"sg-q"}}
	n := Action{Key: "c1:nftables:host:2001:db8::5/128", Kind: KindNftables, Resource: "host", Target: netip.MustParsePrefix("2001:db8::5/128")}
	p := Plan{CaseID: "c1", Actions: []Action{a, q, n}, Refused: []Refusal{{What: "8.8.8.8 port 53/udp", Reason: "8.8.8.8 is Google Public DNS"}}}
	want := []string{
		"block egress tcp 203.0.113.5/32 port 22 in network ACL acl-1 (rule 41): port scan reported by AWS",
		"    CreateNetworkAclEntry NetworkAclId=acl-1 RuleNumber=41 Egress=true RuleAction=deny",
		"block all traffic of instance i-1 by quarantine (its security groups swapped for sg-q)",
		"block all egress 2001:db8::5/128 in nftables table inet abuse_responder",
		"not blocked: 8.8.8.8 port 53/udp: 8.8.8.8 is Google Public DNS",
	}
	if got := p.Text(); !reflect.DeepEqual(got, want) {
		t.Errorf("Plan.Text() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestBuildPlanStop: a backend's Stop refusal (an instance with the protect
// tag) empties the whole plan, other backends' actions included.
func TestBuildPlanStop(t *testing.T) {
	host := newMem(KindNftables)
	ec2 := newMem(KindNACL)
	ec2.refuse = []Refusal{{What: "i-1", Reason: "instance i-1 carries the protect tag", Stop: true}}
	in := testInput(target("203.0.113.5", 22, "tcp"))
	in.Policy.Kinds = []Kind{KindNACL, KindNftables}
	plan, err := BuildPlan(context.Background(), in, []Backend{host, ec2})
	if err != nil || len(plan.Actions) != 0 || len(plan.Refused) != 1 || !plan.Refused[0].Stop {
		t.Errorf("BuildPlan with a stop = %d actions, %+v, %v; want none and the stop", len(plan.Actions), plan.Refused, err)
	}
}

// TestKindsFor: miners, malware and DoS are quarantined when an isolation
// group is set, and a quarantine always brings network ACL denies.
func TestKindsFor(t *testing.T) {
	nacl := []Kind{KindNACL}
	tests := []struct {
		typ   abuse.Type
		kinds []Kind
		group string
		want  []Kind
	}{
		{abuse.TypeCryptoMining, nacl, "sg-q", []Kind{KindNACL, KindQuarantine}},
		{abuse.TypeCryptoMining, nacl, "", nacl},
		{abuse.TypePortScan, nacl, "sg-q", nacl},
		{abuse.TypeDoS, []Kind{KindNftables}, "sg-q", []Kind{KindNACL, KindNftables, KindQuarantine}},
		{abuse.TypeIntrusion, []Kind{KindQuarantine}, "sg-q", []Kind{KindNACL, KindQuarantine}},
	}
	for _, tt := range tests {
		got := kindsFor(tt.typ, Policy{Kinds: tt.kinds, QuarantineGroup: tt.group})
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("kindsFor(%s, %v, %q) = %v, want %v", tt.typ, tt.kinds, tt.group, got, tt.want)
		}
	}
}
