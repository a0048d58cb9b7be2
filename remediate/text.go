package remediate

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Text renders the plan for the summary mail and the `plan` command: one
// line per action ("block egress tcp 203.0.113.5/32 port 22 in network ACL
// acl-1 (rule 41): reason"), the exact calls indented under it, then one
// line per refusal. The approver reads this before confirming, so it names
// every change and every call.
func (p Plan) Text() []string {
	var lines []string
	if p.DryRun {
		lines = append(lines, "dry run: nothing below is changed")
	}
	if len(p.Actions) == 0 {
		if len(p.Refused) > 0 {
			lines = append(lines, "no change: nothing may be blocked (see below)")
		} else {
			lines = append(lines, "no change: nothing to block")
		}
	}
	for _, a := range p.Actions {
		line := "block " + describe(a, false)
		if a.Kind == KindNACL && a.RuleNumber != 0 {
			line += " (rule " + strconv.Itoa(int(a.RuleNumber)) + ")"
		}
		if a.Reason != "" {
			line += ": " + a.Reason
		}
		lines = append(lines, line)
		for _, c := range a.Calls {
			lines = append(lines, "    "+c)
		}
	}
	for _, r := range p.Refused {
		lines = append(lines, "not blocked: "+r.What+": "+r.Reason)
	}
	return lines
}

// describe says what an action blocks and where, after the verb "block"
// (done false: "egress tcp 203.0.113.5/32 port 22 in network ACL acl-1")
// or "blocked" (done true: "egress tcp to 203.0.113.5/32 port 22 in ...").
func describe(a Action, done bool) string {
	if a.Kind == KindQuarantine {
		s := "all traffic of instance " + instanceOf(a) + " by quarantine"
		if len(a.GroupIDs) > 0 && a.GroupIDs[0] != "" {
			s += " (its security groups swapped for " + strings.Join(a.GroupIDs, ", ") + ")"
		}
		return s
	}
	s := traffic(a, done)
	switch a.Kind {
	case KindNACL:
		s += " in network ACL " + a.Resource
	case KindSecurityGroup:
		s += " on instance " + instanceOf(a)
		if len(a.GroupIDs) == 0 || slices.Contains(a.GroupIDs, "") {
			s += " by a per-case security group"
		} else {
			s += " by swapping in security groups " + strings.Join(a.GroupIDs, ", ")
		}
	case KindNftables:
		if a.Resource != "" && a.Resource != "host" {
			s += " on host " + a.Resource
		}
		s += " in nftables table inet abuse_responder"
	default:
		s += fmt.Sprintf(" by %s on %s", a.Kind, a.Resource)
	}
	return s
}

// traffic names the blocked traffic: "egress tcp 203.0.113.5/32 port 22",
// with "to" before the address in the past tense, which reads as a report.
func traffic(a Action, done bool) string {
	to := ""
	if done {
		to = "to "
	}
	target := a.Target.String()
	if !a.Target.IsValid() {
		target = "(no target)"
	}
	var s string
	if a.Protocol == "" && a.Port == 0 {
		s = "all egress " + to + target
	} else {
		s = "egress "
		if a.Protocol != "" {
			s += a.Protocol + " "
		}
		s += to + target
	}
	if a.Port != 0 {
		s += " port " + strconv.Itoa(int(a.Port))
	}
	return s
}

func instanceOf(a Action) string {
	if a.InstanceID != "" {
		return a.InstanceID
	}
	return a.Resource
}
