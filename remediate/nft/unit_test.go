package nft

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/remediate"
)

func TestBlockOf(t *testing.T) {
	for _, tc := range []struct {
		target string
		proto  string
		ok     bool
	}{
		{"203.0.113.5/32", "tcp", true},
		{"203.0.113.0/24", "", true},
		{"2001:db8::7/128", "udp", true},
		{"2001:db8:1::/48", "", true},
		{"::ffff:203.0.113.5/128", "tcp", true},
		{"0.0.0.0/0", "", false},
		{"::/0", "", false},
		{"0.0.0.0/32", "", false},
		{"203.0.112.0/23", "", false},
		{"10.0.0.0/8", "tcp", false},
		{"2001:db8::/32", "", false},
		{"203.0.113.5/24", "", false}, // host bits set
		{"203.0.113.5/32", "icmp", false},
	} {
		b, err := blockOf(netip.MustParsePrefix(tc.target), tc.proto, 22)
		if (err == nil) != tc.ok {
			t.Errorf("blockOf(%s, %q) = %+v, %v; want ok %t", tc.target, tc.proto, b, err, tc.ok)
		}
	}
	if b, _ := blockOf(netip.MustParsePrefix("::ffff:203.0.113.5/128"), "", 0); b.prefix != netip.MustParsePrefix("203.0.113.5/32") {
		t.Errorf("blockOf(::ffff:203.0.113.5/128).prefix = %v, want 203.0.113.5/32", b.prefix)
	}
}

func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		168 * time.Hour:                  "168h",
		90 * time.Minute:                 "1h30m",
		90 * time.Second:                 "1m30s",
		1500 * time.Millisecond:          "1500ms",
		time.Hour + 5*time.Second:        "1h5s",
		24*time.Hour + 1*time.Minute:     "24h1m",
		2*time.Second + time.Microsecond: "2s",
	} {
		if got := durationText(d); got != want {
			t.Errorf("durationText(%v) = %q, want %q", d, got, want)
		}
		a := remediate.Action{Calls: []string{"add table inet x", `add element inet x v4_all { 203.0.113.5 timeout ` + want + ` comment "k" }`}}
		if got, err := ttlOf(a); err != nil || got != d.Round(time.Millisecond) {
			t.Errorf("ttlOf(%q) = %v, %v; want %v", want, got, err, d)
		}
	}
	if got, err := ttlOf(remediate.Action{Calls: []string{`add element inet x v4_all { 203.0.113.5 comment "k" }`}}); err != nil || got != 0 {
		t.Errorf("ttlOf(no timeout) = %v, %v; want 0", got, err)
	}
}

// Elements encode and decode to the same spans, for both kinds of set.
func TestElementsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		prefix, proto string
		port          uint16
		text          []string
	}{
		{"203.0.113.5/32", "tcp", 22, []string{"203.0.113.5 . 22"}},
		{"203.0.113.0/24", "udp", 0, []string{"203.0.113.0/24 . 0-65535"}},
		{"203.0.113.5/32", "", 443, []string{"203.0.113.5 . 443", "203.0.113.5 . 443"}},
		{"203.0.113.5/32", "", 0, []string{"203.0.113.5"}},
		{"255.255.255.255/32", "", 0, []string{"255.255.255.255"}},
		{"2001:db8:1::/48", "", 0, []string{"2001:db8:1::/48"}},
		{"2001:db8::7/128", "tcp", 8080, []string{"2001:db8::7 . 8080"}},
	} {
		b, err := blockOf(netip.MustParsePrefix(tc.prefix), tc.proto, tc.port)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range b.sets() {
			sp := b.spanOf(s)
			if got := sp.text(s); got != tc.text[i] {
				t.Errorf("%s %q %d in %s: text %q, want %q", tc.prefix, tc.proto, tc.port, s.name(), got, tc.text[i])
			}
			// A neighbour below, to check that starts pair with the right end.
			els := append(sp.elements(s, time.Hour, "k"), neighbour(s, sp)...)
			got := decodeElements(s, els)
			if len(got) == 0 || got[0].span != sp || got[0].comment != "k" {
				t.Errorf("%s in %s: decoded %+v, want %+v", tc.prefix, s.name(), got, sp)
			}
		}
	}
}

// neighbour is an element just below sp in a plain interval set.
func neighbour(s setSpec, sp span) []nftables.SetElement {
	if s.concat() || !sp.first.Prev().IsValid() {
		return nil
	}
	p := netip.PrefixFrom(sp.first.Prev(), sp.first.BitLen())
	return span{first: p.Addr(), last: p.Addr()}.elements(s, 0, "other")
}

// Without nftables among the configured kinds, Plan proposes nothing and
// does not read the ruleset (so it runs without root).
func TestPlanOtherKinds(t *testing.T) {
	b, err := New(Options{NetNS: ""})
	if err != nil {
		t.Fatal(err)
	}
	actions, refusals, err := b.Plan(context.Background(), remediate.Input{
		CaseID:  "c1",
		Targets: []abuse.Target{{IP: netip.MustParseAddr("203.0.113.5")}},
		Policy:  remediate.Policy{Kinds: []remediate.Kind{remediate.KindNACL}},
	})
	if err != nil || actions != nil || refusals != nil {
		t.Fatalf("Plan = %v, %v, %v; want nothing", actions, refusals, err)
	}
	if _, err := New(Options{Table: "bad name"}); err == nil {
		t.Error(`New(Table "bad name") succeeded`)
	}
	if _, err := New(Options{NetNS: "/nonexistent/netns"}); err == nil {
		t.Error("New with a missing namespace succeeded")
	}
}
