package nft

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/remediate"
)

// planOne plans a block of one target and returns its action.
func planOne(t *testing.T, b *Backend, caseID string, target abuse.Target, ttl time.Duration) remediate.Action {
	t.Helper()
	actions, refusals, err := b.Plan(context.Background(), remediate.Input{
		CaseID:  caseID,
		Type:    abuse.TypePortScan,
		Targets: []abuse.Target{target},
		Policy:  remediate.Policy{Kinds: []remediate.Kind{remediate.KindNftables}, BlockTTL: ttl},
	})
	if err != nil || len(refusals) != 0 || len(actions) != 1 {
		t.Fatalf("Plan(%v) = %v, %v, %v; want one action", target, actions, refusals, err)
	}
	return actions[0]
}

func apply(t *testing.T, b *Backend, a remediate.Action, dryRun bool) remediate.Change {
	t.Helper()
	c, err := b.Apply(context.Background(), a, dryRun)
	if err != nil {
		t.Fatalf("Apply(%s, dryRun %t): %v", a.Key, dryRun, err)
	}
	return c
}

func verify(t *testing.T, b *Backend, a remediate.Action) remediate.Check {
	t.Helper()
	chk, err := b.Verify(context.Background(), a)
	if err != nil {
		t.Fatalf("Verify(%s): %v", a.Key, err)
	}
	return chk
}

func undo(t *testing.T, b *Backend, c remediate.Change) {
	t.Helper()
	if err := b.Undo(context.Background(), c); err != nil {
		t.Fatalf("Undo(%s): %v", c.Key, err)
	}
}

func decode(t *testing.T, raw json.RawMessage) record {
	t.Helper()
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return r
}

const foreignTable = `table inet other {
	chain output {
		type filter hook output priority 10; policy accept;
		ip daddr 198.51.100.9 counter accept
	}
}
`

func TestBlockTCP(t *testing.T) {
	l := newLab(t)
	b := l.backend(t)
	l.mustNft(t, l.near, "add", "table", "inet", "other")
	l.mustNft(t, l.near, "add", "chain", "inet", "other", "output", "{ type filter hook output priority 10; policy accept; }")
	l.mustNft(t, l.near, "add", "rule", "inet", "other", "output", "ip daddr 198.51.100.9 counter accept")
	other := l.listTable(t, l.near, "other")

	l.mustConnect(t, l.far4, l.port)
	a := planOne(t, b, "c1", abuse.Target{IP: l.far4, Port: l.port, Protocol: "tcp"}, 168*time.Hour)
	wantKey := fmt.Sprintf("c1:nftables:198.51.100.7/32:tcp:%d", l.port)
	wantCall := fmt.Sprintf(`add element inet abuse_responder v4_tcp { 198.51.100.7 . %d timeout 168h comment %q }`, l.port, wantKey)
	if a.Key != wantKey || a.Resource != "host" || a.Target != netip.MustParsePrefix("198.51.100.7/32") || a.Calls[len(a.Calls)-1] != wantCall {
		t.Fatalf("Plan: key %q resource %q target %v calls %q; want key %q, last call %q", a.Key, a.Resource, a.Target, a.Calls, wantKey, wantCall)
	}
	if chk := verify(t, b, a); chk.Holds {
		t.Fatalf("Verify before Apply holds: %s", chk.Detail)
	}

	c1 := apply(t, b, a, false)
	if before := decode(t, c1.Before); !c1.Made || before.HasTable || before.Elements[0].Present {
		t.Fatalf("Apply: made %t, before %s; want made, nothing before", c1.Made, c1.Before)
	}
	l.mustFail(t, l.far4, l.port, syscall.ECONNREFUSED)
	l.mustConnect(t, l.far4, l.port2) // another port
	l.mustConnect(t, l.far4b, l.port) // another address
	l.mustConnect(t, l.far6, l.port)  // another family
	chk := verify(t, b, a)
	if !chk.Holds || !strings.Contains(chk.Detail, "refused in") {
		t.Fatalf("Verify after Apply = %+v, want it to hold with a refused connect", chk)
	}
	t.Logf("Verify: %s", chk.Detail)

	ours := l.listTable(t, l.near, "abuse_responder")
	c2 := apply(t, b, a, false)
	if c2.Made || len(c2.Calls) != 0 {
		t.Fatalf("Apply again: made %t calls %q; want nothing", c2.Made, c2.Calls)
	}
	if before, after := decode(t, c2.Before), decode(t, c2.After); before.Elements[0].Present || !after.Elements[0].Present {
		t.Fatalf("Apply again: before %s after %s; want the element (ours) absent before, present after", c2.Before, c2.After)
	}
	if got := l.listTable(t, l.near, "abuse_responder"); got != ours {
		t.Fatalf("Apply again changed the table:\n%s\nwas:\n%s", got, ours)
	}
	if got := l.listTable(t, l.near, "other"); got != other {
		t.Fatalf("Apply changed table inet other:\n%s\nwas:\n%s", got, other)
	}

	undo(t, b, c1)
	l.mustConnect(t, l.far4, l.port)
	if l.hasTable(t, l.near, "abuse_responder") {
		t.Fatal("Undo left table inet abuse_responder")
	}
	if got := l.listTable(t, l.near, "other"); got != other {
		t.Fatalf("Undo changed table inet other:\n%s\nwas:\n%s", got, other)
	}
	undo(t, b, c1) // gone already: no error
	if chk := verify(t, b, a); chk.Holds {
		t.Fatalf("Verify after Undo holds: %s", chk.Detail)
	}
}

func TestDryRun(t *testing.T) {
	l := newLab(t)
	b := l.backend(t)
	a := planOne(t, b, "c1", abuse.Target{IP: l.far4, Port: l.port, Protocol: "tcp"}, 0)
	c := apply(t, b, a, true)
	if c.Made || len(c.Calls) == 0 || strings.Join(c.Calls, "\n") != strings.Join(a.Calls, "\n") {
		t.Fatalf("dry run: made %t calls %q; want not made, the plan's calls %q", c.Made, c.Calls, a.Calls)
	}
	if l.hasTable(t, l.near, "abuse_responder") {
		t.Fatal("dry run created the table")
	}
	l.mustConnect(t, l.far4, l.port)
	undo(t, b, c) // a dry run has nothing to undo

	actions, refusals, err := b.Plan(context.Background(), remediate.Input{
		CaseID: "c2",
		Targets: []abuse.Target{
			{IP: l.far4, Port: 22, Protocol: "icmp"},
			{},
			{IP: netip.MustParseAddr("0.0.0.0")},
			{IP: l.far4, Port: 22, Protocol: "TCP"},
			{IP: l.far4, Port: 22, Protocol: "tcp"}, // the same action again
		},
		Policy: remediate.Policy{Kinds: []remediate.Kind{remediate.KindNftables}},
	})
	if err != nil || len(actions) != 1 || len(refusals) != 3 {
		t.Fatalf("Plan = %+v, %+v, %v; want one action and three refusals", actions, refusals, err)
	}
	for _, r := range refusals {
		t.Logf("refused %s: %s", r.What, r.Reason)
	}
}

func TestIPv6(t *testing.T) {
	l := newLab(t)
	b := l.backend(t)
	l.mustConnect(t, l.far6, l.port)
	a := planOne(t, b, "c6", abuse.Target{IP: l.far6, Port: l.port, Protocol: "tcp"}, time.Hour)
	if a.Target != netip.MustParsePrefix("2001:db8::7/128") {
		t.Fatalf("Plan target = %v, want 2001:db8::7/128", a.Target)
	}
	c := apply(t, b, a, false)
	l.mustFail(t, l.far6, l.port, syscall.ECONNREFUSED)
	l.mustConnect(t, l.far4, l.port)
	if chk := verify(t, b, a); !chk.Holds {
		t.Fatalf("Verify = %+v, want it to hold", chk)
	}
	undo(t, b, c)
	l.mustConnect(t, l.far6, l.port)
}

// A flushed ruleset is what a reboot leaves: Verify sees it, and Apply of
// the same action puts everything back.
func TestRestoreAfterFlush(t *testing.T) {
	l := newLab(t)
	b := l.backend(t)
	a := planOne(t, b, "c1", abuse.Target{IP: l.far4, Port: l.port, Protocol: "tcp"}, 168*time.Hour)
	c1 := apply(t, b, a, false)
	l.mustFail(t, l.far4, l.port, syscall.ECONNREFUSED)

	l.mustNft(t, l.near, "flush", "ruleset") // inside the lab's namespace only
	if chk := verify(t, b, a); chk.Holds || !strings.Contains(chk.Detail, "missing") {
		t.Fatalf("Verify after flush = %+v, want not holding", chk)
	}
	l.mustConnect(t, l.far4, l.port)

	c2 := apply(t, b, a, false)
	if !c2.Made || len(c2.Calls) != len(c1.Calls) {
		t.Fatalf("Apply after flush: made %t calls %q; want everything again: %q", c2.Made, c2.Calls, c1.Calls)
	}
	l.mustFail(t, l.far4, l.port, syscall.ECONNREFUSED)
	if chk := verify(t, b, a); !chk.Holds {
		t.Fatalf("Verify after restore = %+v", chk)
	}
	undo(t, b, c1) // the record from before the reboot still undoes it
	l.mustConnect(t, l.far4, l.port)
	if l.hasTable(t, l.near, "abuse_responder") {
		t.Fatal("Undo left the table")
	}
}

// The calls are real nft syntax: fed to the nft CLI in another namespace
// they build the same table as Apply.
func TestCallsAreNft(t *testing.T) {
	l := newLab(t)
	b := l.backend(t)
	targets := []abuse.Target{
		{IP: l.far4, Port: l.port, Protocol: "tcp"},
		{IP: netip.MustParseAddr("203.0.113.5"), Port: 53, Protocol: "udp"},
		{IP: netip.MustParseAddr("203.0.113.6")},
		{IP: netip.MustParseAddr("2001:db8::9"), Port: 443},
	}
	var calls []string
	for i, tg := range targets {
		c := apply(t, b, planOne(t, b, fmt.Sprint("c", i), tg, 2*time.Hour), false)
		calls = append(calls, c.Calls...)
	}
	script := strings.Join(calls, "\n") + "\n"
	cmd := fmt.Sprintf("ip netns exec %s nft -f -", l.far)
	if out, err := runShell(cmd, script); err != nil {
		t.Fatalf("nft -f of the calls: %v\n%s\n%s", err, out, script)
	}
	strip := func(s string) string { return handles.ReplaceAllString(s, "") }
	got, want := strip(l.listTable(t, l.near, "abuse_responder")), strip(l.listTable(t, l.far, "abuse_responder"))
	if got != want {
		t.Fatalf("table made by Apply:\n%s\ntable made by nft from the calls:\n%s\ncalls:\n%s", got, want, script)
	}
	t.Logf("table:\n%s", got)
}
