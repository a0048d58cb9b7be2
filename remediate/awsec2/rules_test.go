package awsec2

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/aws/smithy-go"
)

func TestAggregateCoversOnlyTheGivenAddresses(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{[]string{"203.0.113.4/32", "203.0.113.5/32", "203.0.113.6/32", "203.0.113.7/32"}, []string{"203.0.113.4/30"}},
		{[]string{"203.0.113.5/32", "203.0.113.6/32"}, []string{"203.0.113.5/32", "203.0.113.6/32"}},                     // not one block's halves
		{[]string{"203.0.113.0/25", "203.0.113.128/25", "203.0.112.0/24"}, []string{"203.0.112.0/24", "203.0.113.0/24"}}, // never past /24
		{[]string{"2001:db8::/128", "2001:db8::1/128"}, []string{"2001:db8::/127"}},
	} {
		var in []netip.Prefix
		for _, s := range tc.in {
			in = append(in, netip.MustParsePrefix(s))
		}
		var got []string
		for _, p := range aggregate(in) {
			got = append(got, p.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("aggregate(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestWithoutSplitsAllTraffic(t *testing.T) {
	got := without([]perm{{Proto: "-1", CIDR: "::/0"}, {Proto: "tcp", From: 20, To: 25, CIDR: "0.0.0.0/0"}, {Proto: "tcp", From: 22, To: 22, Group: "sg-db"}},
		traffic{"tcp", 22})
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	want := []string{"tcp 0-21 to ::/0", "tcp 23-65535 to ::/0", "udp 0-65535 to ::/0", "icmpv6 -1--1 to ::/0",
		"tcp 20-21 to 0.0.0.0/0", "tcp 23-25 to 0.0.0.0/0", "tcp 22-22 to sg-db"}
	if !slices.Equal(s, want) {
		t.Errorf("without = %v, want %v", s, want)
	}
}

type apiErr struct{ code string }

func (e apiErr) Error() string                 { return e.code }
func (e apiErr) ErrorCode() string             { return e.code }
func (e apiErr) ErrorMessage() string          { return e.code }
func (e apiErr) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }

func TestIsPermanent(t *testing.T) {
	for code, want := range map[string]bool{
		"UnauthorizedOperation": true, "AuthFailure": true, "InvalidNetworkAclID.NotFound": true, "InvalidInstanceID.NotFound": true,
		"NetworkAclEntryLimitExceeded": true, "InvalidParameterValue": true,
		"RequestLimitExceeded": false, "Throttling": false, "InternalError": false, "": false,
	} {
		err := fmt.Errorf("outer: %w", wrap(apiErr{code}, "op"))
		if code == "" {
			err = wrap(fmt.Errorf("connection reset"), "op")
		}
		if got := IsPermanent(err); got != want {
			t.Errorf("IsPermanent(%q) = %v, want %v", code, got, want)
		}
	}
	if IsPermanent(nil) || !IsPermanent(permanentf("no free rule number")) {
		t.Error("IsPermanent of nil or of our own permanent error is wrong")
	}
}
