package ec2emu

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// mutState is what the mutating calls add to the fake's state; guarded by
// EC2Fake.mu like the rest.
type mutState struct {
	hooks    map[string][]func() // by action, run once each before the call
	aclQuota int                 // entries per ACL, direction and family; 0 means 20
	tags     map[string]map[string]string
	nextID   int // for created resources' ids
}

// mutatingHandler returns the handler of a mutating EC2 call, or nil.
func (f *EC2Fake) mutatingHandler(action string) func(Call) (any, error) {
	return map[string]func(Call) (any, error){
		"CreateNetworkAclEntry":           f.createNetworkACLEntry,
		"DeleteNetworkAclEntry":           f.deleteNetworkACLEntry,
		"CreateSecurityGroup":             f.createSecurityGroup,
		"DeleteSecurityGroup":             f.deleteSecurityGroup,
		"AuthorizeSecurityGroupEgress":    f.authorizeSecurityGroup(true),
		"AuthorizeSecurityGroupIngress":   f.authorizeSecurityGroup(false),
		"RevokeSecurityGroupEgress":       f.revokeSecurityGroup(true),
		"RevokeSecurityGroupIngress":      f.revokeSecurityGroup(false),
		"ModifyInstanceAttribute":         f.modifyInstanceAttribute,
		"ModifyNetworkInterfaceAttribute": f.modifyNetworkInterfaceAttribute,
		"CreateTags":                      f.createTags,
		"DeleteTags":                      f.deleteTags,
		"DescribeTags":                    f.describeTags,
	}[action]
}

// BeforeNext runs fn once, just before the fake serves the next call of
// action (outside its lock, so fn may call the Add methods). Tests use it
// to stage races, such as another writer taking a rule number between a
// Describe and a Create.
func (f *EC2Fake) BeforeNext(action string, fn func()) {
	f.locked(func() {
		if f.mut.hooks == nil {
			f.mut.hooks = map[string][]func(){}
		}
		f.mut.hooks[action] = append(f.mut.hooks[action], fn)
	})
}

func (f *EC2Fake) runHook(action string) {
	var fn func()
	f.locked(func() {
		if q := f.mut.hooks[action]; len(q) > 0 {
			fn, f.mut.hooks[action] = q[0], q[1:]
		}
	})
	if fn != nil {
		fn()
	}
}

// SetNACLQuota sets the entries a network ACL holds per direction and
// address family (AWS's default, and the fake's, is 20). The default
// entry (rule 32767) does not count.
func (f *EC2Fake) SetNACLQuota(n int) { f.locked(func() { f.mut.aclQuota = n }) }

// AddNetworkACLEntry adds an entry to an existing ACL, as another writer
// would; it panics when the ACL does not exist (a bug in the test).
func (f *EC2Fake) AddNetworkACLEntry(aclID string, e ACLEntry) {
	f.locked(func() {
		a := f.acl(aclID)
		if a == nil {
			panic("ec2emu: no network ACL " + aclID)
		}
		a.Entries = append(a.Entries, e)
	})
}

// NetworkACL returns a copy of an ACL's current state, and whether it exists.
func (f *EC2Fake) NetworkACL(id string) (NetworkACL, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.acl(id)
	if a == nil {
		return NetworkACL{}, false
	}
	c := *a
	c.Entries = slices.Clone(a.Entries)
	c.Subnets = slices.Clone(a.Subnets)
	return c, true
}

func (f *EC2Fake) acl(id string) *NetworkACL {
	for i := range f.st.acls {
		if f.st.acls[i].ID == id {
			return &f.st.acls[i]
		}
	}
	return nil
}

// dryRun answers a call with DryRun=true as AWS does once the call has
// been checked: HTTP 412 DryRunOperation, nothing changed.
func dryRun(c Call) error {
	if c.Params.Get("DryRun") == "true" {
		return errorf(412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
	}
	return nil
}

// ok is the reply of the mutating calls that return only success.
type ok struct {
	Return bool `xml:"return"`
}

func (f *EC2Fake) createNetworkACLEntry(c Call) (any, error) {
	p := c.Params
	a := f.acl(p.Get("NetworkAclId"))
	if a == nil {
		return nil, errorf(400, "InvalidNetworkAclID.NotFound", "The network ACL '%s' does not exist", p.Get("NetworkAclId"))
	}
	n, err := strconv.Atoi(p.Get("RuleNumber"))
	if err != nil || n < 1 || n > 32766 {
		return nil, errorf(400, "InvalidParameterValue", "bad RuleNumber %q", p.Get("RuleNumber"))
	}
	e := ACLEntry{RuleNumber: int32(n), Egress: p.Get("Egress") == "true", Action: p.Get("RuleAction"),
		Protocol: p.Get("Protocol"), CIDR: p.Get("CidrBlock"), IPv6CIDR: p.Get("Ipv6CidrBlock")}
	if (e.CIDR == "") == (e.IPv6CIDR == "") || (e.Action != "allow" && e.Action != "deny") {
		return nil, errorf(400, "InvalidParameterValue", "need one of CidrBlock or Ipv6CidrBlock, and RuleAction allow or deny")
	}
	if e.Protocol == "6" || e.Protocol == "17" {
		from, err1 := strconv.Atoi(p.Get("PortRange.From"))
		to, err2 := strconv.Atoi(p.Get("PortRange.To"))
		if err1 != nil || err2 != nil {
			return nil, errorf(400, "InvalidParameterValue", "TCP and UDP entries need PortRange")
		}
		e.FromPort, e.ToPort = int32(from), int32(to)
	}
	quota, count := f.mut.aclQuota, 0
	if quota == 0 {
		quota = 20
	}
	for _, old := range a.Entries {
		if old.Egress != e.Egress || old.RuleNumber == 32767 {
			continue
		}
		if old.RuleNumber == e.RuleNumber {
			return nil, errorf(400, "NetworkAclEntryAlreadyExists", "The network acl entry identified by %d already exists.", n)
		}
		if (old.IPv6CIDR != "") == (e.IPv6CIDR != "") {
			count++
		}
	}
	if count >= quota {
		return nil, errorf(400, "NetworkAclEntryLimitExceeded", "The maximum number of network ACL entries (%d) has been reached.", quota)
	}
	if err := dryRun(c); err != nil {
		return nil, err
	}
	a.Entries = append(a.Entries, e)
	return ok{true}, nil
}

func (f *EC2Fake) deleteNetworkACLEntry(c Call) (any, error) {
	p := c.Params
	a := f.acl(p.Get("NetworkAclId"))
	if a == nil {
		return nil, errorf(400, "InvalidNetworkAclID.NotFound", "The network ACL '%s' does not exist", p.Get("NetworkAclId"))
	}
	egress := p.Get("Egress") == "true"
	i := slices.IndexFunc(a.Entries, func(e ACLEntry) bool {
		return e.Egress == egress && strconv.Itoa(int(e.RuleNumber)) == p.Get("RuleNumber")
	})
	if i < 0 {
		return nil, errorf(400, "InvalidNetworkAclEntry.NotFound", "The network ACL entry %s (egress %v) does not exist", p.Get("RuleNumber"), egress)
	}
	if err := dryRun(c); err != nil {
		return nil, err
	}
	a.Entries = slices.Delete(a.Entries, i, i+1)
	return ok{true}, nil
}

func (f *EC2Fake) instance(id string) *Instance {
	for i := range f.st.instances {
		if f.st.instances[i].ID == id {
			return &f.st.instances[i]
		}
	}
	return nil
}

// modifyInstanceAttribute serves the Groups attribute (GroupId.N): like
// AWS it changes the primary (here: the first attached) interface.
func (f *EC2Fake) modifyInstanceAttribute(c Call) (any, error) {
	in := f.instance(c.Params.Get("InstanceId"))
	if in == nil {
		return nil, errorf(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", c.Params.Get("InstanceId"))
	}
	groups := list(c.Params, "GroupId")
	if len(groups) == 0 {
		return nil, errorf(400, "InvalidParameterCombination", "the fake serves only the Groups attribute")
	}
	if err := f.checkGroups(groups); err != nil {
		return nil, err
	}
	if err := dryRun(c); err != nil {
		return nil, err
	}
	in.Groups = groups
	for i := range f.st.enis {
		if f.st.enis[i].InstanceID == in.ID {
			f.st.enis[i].Groups = slices.Clone(groups)
			break
		}
	}
	return ok{true}, nil
}

// modifyNetworkInterfaceAttribute serves SecurityGroupId.N. The
// instance's own group list follows its interfaces' union.
func (f *EC2Fake) modifyNetworkInterfaceAttribute(c Call) (any, error) {
	id := c.Params.Get("NetworkInterfaceId")
	i := slices.IndexFunc(f.st.enis, func(e ENI) bool { return e.ID == id })
	if i < 0 {
		return nil, errorf(400, "InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist", id)
	}
	groups := list(c.Params, "SecurityGroupId")
	if len(groups) == 0 {
		return nil, errorf(400, "InvalidParameterCombination", "the fake serves only SecurityGroupId")
	}
	if err := f.checkGroups(groups); err != nil {
		return nil, err
	}
	if err := dryRun(c); err != nil {
		return nil, err
	}
	f.st.enis[i].Groups = groups
	if in := f.instance(f.st.enis[i].InstanceID); in != nil {
		var union []string
		for _, e := range f.st.enis {
			if e.InstanceID == in.ID {
				for _, g := range e.Groups {
					if !slices.Contains(union, g) {
						union = append(union, g)
					}
				}
			}
		}
		in.Groups = union
	}
	return ok{true}, nil
}

func (f *EC2Fake) checkGroups(ids []string) error {
	for _, g := range ids {
		if f.group(g) == nil {
			return errorf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", g)
		}
	}
	return nil
}

// tagsOf returns the tag map of an instance or another resource, creating
// it; nil when the resource is an unknown instance.
func (f *EC2Fake) tagsOf(id string) map[string]string {
	if strings.HasPrefix(id, "i-") {
		in := f.instance(id)
		if in == nil {
			return nil
		}
		if in.Tags == nil {
			in.Tags = map[string]string{}
		}
		return in.Tags
	}
	if f.mut.tags == nil {
		f.mut.tags = map[string]map[string]string{}
	}
	if f.mut.tags[id] == nil {
		f.mut.tags[id] = map[string]string{}
	}
	return f.mut.tags[id]
}

// tagList reads Tag.N.Key / Tag.N.Value, or the prefix's variant.
func tagList(form map[string][]string, prefix string) [][2]string {
	var out [][2]string
	for n := 1; ; n++ {
		k := fmt.Sprintf("%sTag.%d.Key", prefix, n)
		if _, has := form[k]; !has {
			return out
		}
		v := form[fmt.Sprintf("%sTag.%d.Value", prefix, n)]
		val := ""
		if len(v) > 0 {
			val = v[0]
		}
		out = append(out, [2]string{form[k][0], val})
	}
}

// tagResources is the call's ResourceIds, each of which must exist, once
// the call is not a dry run.
func (f *EC2Fake) tagResources(c Call) ([]string, error) {
	ids := list(c.Params, "ResourceId")
	for _, id := range ids {
		if f.tagsOf(id) == nil {
			return nil, errorf(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
	}
	if err := dryRun(c); err != nil {
		return nil, err
	}
	return ids, nil
}

func (f *EC2Fake) createTags(c Call) (any, error) {
	ids, err := f.tagResources(c)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		for _, kv := range tagList(c.Params, "") {
			f.tagsOf(id)[kv[0]] = kv[1]
		}
	}
	return ok{true}, nil
}

// deleteTags deletes the named keys; a key given with a value is deleted
// only when the value matches, as on AWS.
func (f *EC2Fake) deleteTags(c Call) (any, error) {
	ids, err := f.tagResources(c)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		tags := f.tagsOf(id)
		for n := 1; c.Params.Has(fmt.Sprintf("Tag.%d.Key", n)); n++ {
			k := c.Params.Get(fmt.Sprintf("Tag.%d.Key", n))
			if c.Params.Has(fmt.Sprintf("Tag.%d.Value", n)) && tags[k] != c.Params.Get(fmt.Sprintf("Tag.%d.Value", n)) {
				continue
			}
			delete(tags, k)
		}
	}
	return ok{true}, nil
}

// describeTags serves the resource-id and key filters.
func (f *EC2Fake) describeTags(c Call) (any, error) {
	type item struct {
		ResourceID   string `xml:"resourceId"`
		ResourceType string `xml:"resourceType"`
		Key          string `xml:"key"`
		Value        string `xml:"value"`
	}
	fs := filters(c.Params)
	for name := range fs {
		if name != "resource-id" && name != "key" {
			return nil, errorf(400, "InvalidParameterValue", "The filter '%s' is invalid", name)
		}
	}
	var ids []string
	for _, in := range f.st.instances {
		ids = append(ids, in.ID)
	}
	ids = append(ids, sortedKeys(f.mut.tags)...)
	var out []item
	for _, id := range ids {
		if len(fs["resource-id"]) > 0 && !slices.Contains(fs["resource-id"], id) {
			continue
		}
		tags := f.tagsOf(id)
		for _, k := range sortedKeys(tags) {
			if len(fs["key"]) > 0 && !slices.Contains(fs["key"], k) {
				continue
			}
			typ := "security-group"
			if strings.HasPrefix(id, "i-") {
				typ = "instance"
			}
			out = append(out, item{id, typ, k, tags[k]})
		}
	}
	return struct {
		Tags []item `xml:"tagSet>item"`
	}{out}, nil
}

// validCIDR reports whether s is a CIDR of the wanted family.
func validCIDR(s string, v6 bool) bool {
	p, err := netip.ParsePrefix(s)
	return err == nil && p.Addr().Is6() == v6
}
