package awsec2

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/abuse-responder/abuse-responder/remediate"
)

// naclBefore is a KindNACL Change.Before: the whole ACL as it was.
type naclBefore struct {
	ACLID   string     `json:"acl_id"`
	Entries []aclEntry `json:"entries"`
}

// naclAfter is a KindNACL Change.After: the entry that holds the block,
// with the number it really got. Undo deletes exactly this entry.
type naclAfter struct {
	ACLID  string   `json:"acl_id"`
	Entry  aclEntry `json:"entry"`
	DryRun bool     `json:"dry_run,omitempty"`
}

// maxRenumber bounds how often Apply picks another number after losing
// a race for one.
const maxRenumber = 5

// describeACL reads one ACL's entries.
func (b *Backend) describeACL(ctx context.Context, id string) ([]aclEntry, error) {
	out, err := b.ec2.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{id}})
	if err != nil {
		return nil, wrap(err, "describe network ACL %s", id)
	}
	for _, acl := range out.NetworkAcls {
		if aws.ToString(acl.NetworkAclId) == id {
			return entriesOf(acl), nil
		}
	}
	return nil, permanentf("describe network ACL %s: not in the answer", id)
}

// wantOf is the entry a plans, with its planned number.
func wantOf(a remediate.Action) (aclEntry, error) {
	e, err := denyEntry(a.Target, a.Protocol, a.Port)
	if err != nil {
		return aclEntry{}, permanentf("action %s: %v", a.Key, err)
	}
	if !a.Target.IsValid() || a.Target.Bits() == 0 {
		return aclEntry{}, permanentf("action %s: refusing to block %v", a.Key, a.Target)
	}
	e.Number = a.RuleNumber
	return e, nil
}

// applyNACL creates the deny entry unless an equal one already holds,
// re-reading the ACL first: the planned number may have been taken since
// the plan (another writer, or EC2 answering NetworkAclEntryAlreadyExists),
// and then the next free number inside the band and before the first
// matching allow is used and recorded in After.
func (b *Backend) applyNACL(ctx context.Context, a remediate.Action, dryRun bool) (remediate.Change, error) {
	want, err := wantOf(a)
	if err != nil {
		return remediate.Change{}, err
	}
	band := b.band
	if band == [2]int32{} {
		band = [2]int32{a.RuleNumber, a.RuleNumber}
	}
	var before []byte
	for attempt := 0; ; attempt++ {
		entries, err := b.describeACL(ctx, a.Resource)
		if err != nil {
			return remediate.Change{}, err
		}
		if before == nil {
			before = mustJSON(naclBefore{ACLID: a.Resource, Entries: entries})
		}
		done := func(n int32) remediate.Change {
			e := want
			e.Number = n
			return remediate.Change{Before: before, After: mustJSON(naclAfter{ACLID: a.Resource, Entry: e}), Calls: []string{}}
		}
		if e, ok := entryAt(entries, want.Number, true); ok && sameRule(e, want) && want.Number < firstAllow(entries, want) {
			return done(want.Number), nil
		}
		if n, ok := existingDeny(band, entries, want); ok {
			return done(n), nil // e.g. placed under another number by an Apply that crashed before recording
		}
		n, ok := freeNumber(want.Number, band, entries, want, nil)
		if !ok {
			return remediate.Change{}, permanentf("no free rule number in %d-%d of %s before its first matching allow (rule %d) for %s",
				band[0], band[1], a.Resource, firstAllow(entries, want), a.Key)
		}
		e := want
		e.Number = n
		call := createEntryCall(a.Resource, e)
		err = b.createEntry(ctx, a.Resource, e, dryRun)
		switch {
		case dryRun && isDryRunOK(err):
			return remediate.Change{Before: before, After: mustJSON(naclAfter{ACLID: a.Resource, Entry: e, DryRun: true}),
				Calls: []string{call}}, nil
		case err == nil && dryRun:
			// An endpoint that ignores DryRun (moto does) has just made
			// the change: say so rather than pretend nothing happened.
			return remediate.Change{Made: true, Before: before, After: mustJSON(naclAfter{ACLID: a.Resource, Entry: e}),
				Calls: []string{call}}, fmt.Errorf("create NACL entry %d in %s: the endpoint ignored DryRun and made the change", n, a.Resource)
		case err == nil:
			return remediate.Change{Made: true, Before: before, After: mustJSON(naclAfter{ACLID: a.Resource, Entry: e}),
				Calls: []string{call}}, nil
		case isCode(err, "NetworkAclEntryAlreadyExists") && attempt < maxRenumber:
			continue // lost the race for n: read again and pick again
		default:
			return remediate.Change{}, wrap(err, "create NACL entry %d in %s", n, a.Resource)
		}
	}
}

func (b *Backend) createEntry(ctx context.Context, acl string, e aclEntry, dryRun bool) error {
	in := &ec2.CreateNetworkAclEntryInput{
		NetworkAclId: aws.String(acl), RuleNumber: aws.Int32(e.Number), Egress: aws.Bool(e.Egress),
		RuleAction: types.RuleAction(e.Action), Protocol: aws.String(e.Protocol), DryRun: aws.Bool(dryRun),
	}
	if e.CIDR.Addr().Is6() {
		in.Ipv6CidrBlock = aws.String(e.CIDR.String())
	} else {
		in.CidrBlock = aws.String(e.CIDR.String())
	}
	if hasPorts(e.Protocol) {
		in.PortRange = &types.PortRange{From: aws.Int32(e.FromPort), To: aws.Int32(e.ToPort)}
	}
	_, err := b.ec2.CreateNetworkAclEntry(ctx, in)
	return err
}

// createEntryCall writes the CreateNetworkAclEntry parameters as EC2
// receives them.
func createEntryCall(acl string, e aclEntry) string {
	s := fmt.Sprintf("ec2:CreateNetworkAclEntry NetworkAclId=%s RuleNumber=%d Egress=%t RuleAction=%s Protocol=%s",
		acl, e.Number, e.Egress, e.Action, e.Protocol)
	if e.CIDR.Addr().Is6() {
		s += " Ipv6CidrBlock=" + e.CIDR.String()
	} else {
		s += " CidrBlock=" + e.CIDR.String()
	}
	if hasPorts(e.Protocol) {
		s += fmt.Sprintf(" PortRange.From=%d PortRange.To=%d", e.FromPort, e.ToPort)
	}
	return s
}

// verifyNACL checks that an entry equal to a's deny is in the ACL, at the
// planned number or (after a renumbering Apply) another, and that no
// allow numbered before it matches the same traffic.
func (b *Backend) verifyNACL(ctx context.Context, a remediate.Action) (remediate.Check, error) {
	want, err := wantOf(a)
	if err != nil {
		return remediate.Check{}, err
	}
	entries, err := b.describeACL(ctx, a.Resource)
	if err != nil {
		return remediate.Check{}, err
	}
	n, found := int32(0), false
	if e, ok := entryAt(entries, want.Number, true); ok && sameRule(e, want) {
		n, found = want.Number, true
	} else {
		for _, e := range entries {
			if sameRule(e, want) && (!found || e.Number < n) {
				n, found = e.Number, true
			}
		}
	}
	what := fmt.Sprintf("deny %s to %s", describeTraffic(a.Protocol, a.Port), a.Target)
	if !found {
		return remediate.Check{Detail: fmt.Sprintf("no entry %s in %s", what, a.Resource)}, nil
	}
	if first := firstAllow(entries, want); first < n {
		return remediate.Check{Detail: fmt.Sprintf("entry %d %s in %s is shadowed by allow entry %d", n, what, a.Resource, first)}, nil
	}
	return remediate.Check{Holds: true, Detail: fmt.Sprintf("entry %d %s present in %s, before any matching allow", n, what, a.Resource)}, nil
}

// undoNACL deletes exactly the entry Apply recorded, and only while it is
// still that entry: a number someone else has reused since is theirs.
func (b *Backend) undoNACL(ctx context.Context, c remediate.Change) error {
	if len(c.After) == 0 {
		return b.undoNACLByKey(ctx, c.Key)
	}
	var after naclAfter
	if err := json.Unmarshal(c.After, &after); err != nil {
		return permanentf("undo %s: bad After record: %v", c.Key, err)
	}
	if after.DryRun {
		return nil
	}
	entries, err := b.describeACL(ctx, after.ACLID)
	if isNotFound(err) {
		return nil // the ACL is gone, and our entry with it
	}
	if err != nil {
		return err
	}
	e, ok := entryAt(entries, after.Entry.Number, after.Entry.Egress)
	if !ok || !sameRule(e, after.Entry) {
		return nil // gone, or replaced by someone else's entry: leave it
	}
	return b.deleteEntry(ctx, after.ACLID, e)
}

func (b *Backend) deleteEntry(ctx context.Context, acl string, e aclEntry) error {
	_, err := b.ec2.DeleteNetworkAclEntry(ctx, &ec2.DeleteNetworkAclEntryInput{
		NetworkAclId: aws.String(acl), RuleNumber: aws.Int32(e.Number), Egress: aws.Bool(e.Egress),
	})
	if isNotFound(err) {
		return nil
	}
	return wrap(err, "delete NACL entry %d in %s", e.Number, acl)
}

// undoNACLByKey undoes an Apply whose Change was never recorded (the
// process stopped in between): the key names the ACL and the entry's
// content, and the entry equal to it (inside the rule band when one is
// set) is ours.
func (b *Backend) undoNACLByKey(ctx context.Context, key string) error {
	acl, want, err := parseNACLKey(key)
	if err != nil {
		return err
	}
	entries, err := b.describeACL(ctx, acl)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		inBand := b.band == [2]int32{} || (e.Number >= b.band[0] && e.Number <= b.band[1])
		if sameRule(e, want) && inBand {
			return b.deleteEntry(ctx, acl, e)
		}
	}
	return nil
}

// parseNACLKey reads "<case>:nacl:<acl-id>:<cidr>:<proto>:<port>"; the
// CIDR may hold colons (IPv6), the other parts do not.
func parseNACLKey(key string) (string, aclEntry, error) {
	bad := permanentf("undo %s: not a NACL action key", key)
	_, rest, ok := strings.Cut(key, ":nacl:")
	if !ok {
		return "", aclEntry{}, bad
	}
	acl, rest, _ := strings.Cut(rest, ":")
	i := strings.LastIndex(rest, ":")
	if i < 0 {
		return "", aclEntry{}, bad
	}
	port, err := strconv.ParseUint(rest[i+1:], 10, 16)
	rest = rest[:i]
	j := strings.LastIndex(rest, ":")
	if err != nil || j < 0 {
		return "", aclEntry{}, bad
	}
	proto := rest[j+1:]
	if proto == "all" {
		proto = ""
	}
	cidr, err := netip.ParsePrefix(rest[:j])
	if err != nil {
		return "", aclEntry{}, bad
	}
	e, err := denyEntry(cidr, proto, uint16(port))
	if err != nil {
		return "", aclEntry{}, bad
	}
	return acl, e, nil
}

// mustJSON encodes records of our own types, which cannot fail.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("awsec2: encode %T: %v", v, err))
	}
	return b
}
