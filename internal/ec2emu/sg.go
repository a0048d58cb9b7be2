package ec2emu

import (
	"fmt"
	"slices"
	"strconv"
)

// SecurityGroupByID returns a copy of a group's current state, and
// whether it exists.
func (f *EC2Fake) SecurityGroupByID(id string) (SecurityGroup, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.group(id)
	if g == nil {
		return SecurityGroup{}, false
	}
	c := *g
	c.Ingress, c.Egress = slices.Clone(g.Ingress), slices.Clone(g.Egress)
	return c, true
}

// InstanceByID returns a copy of an instance's current state (tags
// included), and whether it exists.
func (f *EC2Fake) InstanceByID(id string) (Instance, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.instance(id)
	if in == nil {
		return Instance{}, false
	}
	c := *in
	c.Groups = slices.Clone(in.Groups)
	c.Tags = map[string]string{}
	for k, v := range in.Tags {
		c.Tags[k] = v
	}
	return c, true
}

// ENIByID returns a copy of a network interface, and whether it exists.
func (f *EC2Fake) ENIByID(id string) (ENI, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.st.enis {
		if e.ID == id {
			e.Groups = slices.Clone(e.Groups)
			return e, true
		}
	}
	return ENI{}, false
}

func (f *EC2Fake) group(id string) *SecurityGroup {
	for i := range f.st.groups {
		if f.st.groups[i].ID == id {
			return &f.st.groups[i]
		}
	}
	return nil
}

// createSecurityGroup makes a VPC group with AWS's default egress rule
// (all traffic to 0.0.0.0/0) and the tags of its TagSpecification.
func (f *EC2Fake) createSecurityGroup(c Call) (any, error) {
	p := c.Params
	name, vpc := p.Get("GroupName"), p.Get("VpcId")
	if name == "" || p.Get("GroupDescription") == "" || vpc == "" {
		return nil, errorf(400, "MissingParameter", "GroupName, GroupDescription and VpcId are required")
	}
	for _, g := range f.st.groups {
		if g.Name == name && g.VPCID == vpc {
			return nil, errorf(400, "InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, vpc)
		}
	}
	if err := dryRun(c); err != nil {
		return nil, err
	}
	f.mut.nextID++
	id := fmt.Sprintf("sg-fake%04d", f.mut.nextID)
	f.st.groups = append(f.st.groups, SecurityGroup{ID: id, Name: name, VPCID: vpc,
		Egress: []SGRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}})
	for n := 1; p.Has(fmt.Sprintf("TagSpecification.%d.ResourceType", n)); n++ {
		for _, kv := range tagList(p, fmt.Sprintf("TagSpecification.%d.", n)) {
			f.tagsOf(id)[kv[0]] = kv[1]
		}
	}
	return struct {
		GroupID string `xml:"groupId"`
	}{id}, nil
}

func (f *EC2Fake) deleteSecurityGroup(c Call) (any, error) {
	id := c.Params.Get("GroupId")
	i := slices.IndexFunc(f.st.groups, func(g SecurityGroup) bool { return g.ID == id })
	if i < 0 {
		return nil, errorf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", id)
	}
	for _, e := range f.st.enis {
		if slices.Contains(e.Groups, id) {
			return nil, errorf(400, "DependencyViolation", "resource %s has a dependent object", id)
		}
	}
	if err := dryRun(c); err != nil {
		return nil, err
	}
	f.st.groups = slices.Delete(f.st.groups, i, i+1)
	delete(f.mut.tags, id)
	return ok{true}, nil
}

// permissions reads IpPermissions.N as one SGRule each.
func permissions(c Call) ([]SGRule, error) {
	p := c.Params
	var out []SGRule
	for n := 1; p.Has(fmt.Sprintf("IpPermissions.%d.IpProtocol", n)); n++ {
		pre := fmt.Sprintf("IpPermissions.%d.", n)
		r := SGRule{Protocol: p.Get(pre + "IpProtocol")}
		if r.Protocol != "-1" {
			from, err1 := strconv.Atoi(p.Get(pre + "FromPort"))
			to, err2 := strconv.Atoi(p.Get(pre + "ToPort"))
			if err1 != nil || err2 != nil {
				return nil, errorf(400, "InvalidParameterValue", "%s needs FromPort and ToPort", r.Protocol)
			}
			r.FromPort, r.ToPort = int32(from), int32(to)
		}
		for m := 1; p.Has(fmt.Sprintf("%sIpRanges.%d.CidrIp", pre, m)); m++ {
			r.CIDRs = append(r.CIDRs, p.Get(fmt.Sprintf("%sIpRanges.%d.CidrIp", pre, m)))
		}
		for m := 1; p.Has(fmt.Sprintf("%sIpv6Ranges.%d.CidrIpv6", pre, m)); m++ {
			r.IPv6CIDRs = append(r.IPv6CIDRs, p.Get(fmt.Sprintf("%sIpv6Ranges.%d.CidrIpv6", pre, m)))
		}
		for m := 1; p.Has(fmt.Sprintf("%sGroups.%d.GroupId", pre, m)); m++ {
			r.Groups = append(r.Groups, p.Get(fmt.Sprintf("%sGroups.%d.GroupId", pre, m)))
		}
		for _, cidr := range r.CIDRs {
			if !validCIDR(cidr, false) {
				return nil, errorf(400, "InvalidParameterValue", "bad CidrIp %q", cidr)
			}
		}
		for _, cidr := range r.IPv6CIDRs {
			if !validCIDR(cidr, true) {
				return nil, errorf(400, "InvalidParameterValue", "bad CidrIpv6 %q", cidr)
			}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errorf(400, "MissingParameter", "IpPermissions is required")
	}
	return out, nil
}

// atoms splits rules into one destination each, the unit AWS keeps.
func atoms(rules []SGRule) []SGRule {
	var out []SGRule
	for _, r := range rules {
		base := SGRule{Protocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort}
		for _, c := range r.CIDRs {
			a := base
			a.CIDRs = []string{c}
			out = append(out, a)
		}
		for _, c := range r.IPv6CIDRs {
			a := base
			a.IPv6CIDRs = []string{c}
			out = append(out, a)
		}
		for _, g := range r.Groups {
			a := base
			a.Groups = []string{g}
			out = append(out, a)
		}
	}
	return out
}

func sameAtom(a, b SGRule) bool {
	return a.Protocol == b.Protocol && a.FromPort == b.FromPort && a.ToPort == b.ToPort &&
		slices.Equal(a.CIDRs, b.CIDRs) && slices.Equal(a.IPv6CIDRs, b.IPv6CIDRs) && slices.Equal(a.Groups, b.Groups)
}

// groupRules is the rules of the call's group that it changes (ingress
// or egress), and the rules it names.
func (f *EC2Fake) groupRules(c Call, egress bool) (*[]SGRule, []SGRule, error) {
	g := f.group(c.Params.Get("GroupId"))
	if g == nil {
		return nil, nil, errorf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", c.Params.Get("GroupId"))
	}
	rules, err := permissions(c)
	if err != nil {
		return nil, nil, err
	}
	if egress {
		return &g.Egress, rules, nil
	}
	return &g.Ingress, rules, nil
}

// authorizeSecurityGroup adds rules; a rule already there is
// InvalidPermission.Duplicate, as on AWS. The group keeps one destination
// per rule.
func (f *EC2Fake) authorizeSecurityGroup(egress bool) func(Call) (any, error) {
	return func(c Call) (any, error) {
		have, rules, err := f.groupRules(c, egress)
		if err != nil {
			return nil, err
		}
		existing := atoms(*have)
		add := atoms(rules)
		for _, a := range add {
			if slices.ContainsFunc(existing, func(b SGRule) bool { return sameAtom(a, b) }) {
				return nil, errorf(400, "InvalidPermission.Duplicate", "the specified rule already exists")
			}
		}
		if err := dryRun(c); err != nil {
			return nil, err
		}
		*have = append(existing, add...)
		return ok{true}, nil
	}
}

// revokeSecurityGroup removes rules; one that is not there is
// InvalidPermission.NotFound.
func (f *EC2Fake) revokeSecurityGroup(egress bool) func(Call) (any, error) {
	return func(c Call) (any, error) {
		have, rules, err := f.groupRules(c, egress)
		if err != nil {
			return nil, err
		}
		left := atoms(*have)
		for _, a := range atoms(rules) {
			i := slices.IndexFunc(left, func(b SGRule) bool { return sameAtom(a, b) })
			if i < 0 {
				return nil, errorf(400, "InvalidPermission.NotFound", "the specified rule does not exist in this security group")
			}
			left = slices.Delete(left, i, i+1)
		}
		if err := dryRun(c); err != nil {
			return nil, err
		}
		*have = left
		return ok{true}, nil
	}
}
