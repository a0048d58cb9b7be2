package ec2emu

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Instance is an EC2 instance in the fake. Its network interfaces are the
// ENIs whose InstanceID names it.
type Instance struct {
	ID                 string
	State              string // "" means "running"
	VPCID, SubnetID    string
	PrivateIP          string
	PublicIP           string
	Groups             []string // security group ids
	Tags               map[string]string
	LaunchTime         time.Time
	InstanceProfileARN string
	// NoInterfaceSet leaves networkInterfaceSet out of DescribeInstances,
	// so callers must ask DescribeNetworkInterfaces instead.
	NoInterfaceSet bool
}

// ENI is a network interface, attached to InstanceID when that is set.
type ENI struct {
	ID, SubnetID, VPCID string
	InstanceID          string
	PrivateIPs          []string // the first is the primary
	PublicIP            string   // its association.public-ip
	Groups              []string
	InterfaceType       string // "" means "interface"
	Description         string
}

// Address is an Elastic IP, associated when InstanceID or ENIID is set.
type Address struct {
	PublicIP, AllocationID, AssociationID string
	InstanceID, ENIID, PrivateIP          string
}

// NetworkACL is a network ACL associated with Subnets.
type NetworkACL struct {
	ID, VPCID string
	Default   bool
	Entries   []ACLEntry
	Subnets   []string
}

// ACLEntry is one numbered rule of a NetworkACL. Protocol is AWS's
// number as text ("-1", "6", "17").
type ACLEntry struct {
	RuleNumber       int32
	Egress           bool
	Action           string // "allow" or "deny"
	Protocol         string
	CIDR, IPv6CIDR   string
	FromPort, ToPort int32
}

// SecurityGroup is a VPC security group.
type SecurityGroup struct {
	ID, Name, VPCID string
	Ingress, Egress []SGRule
}

// SGRule is one IP permission of a SecurityGroup.
type SGRule struct {
	Protocol         string // "tcp", "udp", "icmp" or "-1"
	FromPort, ToPort int32
	CIDRs, IPv6CIDRs []string
	Groups           []string
}

// FlowLog is a VPC flow log on an ENI, subnet or VPC (ResourceID).
type FlowLog struct {
	ID, ResourceID, LogGroup string
	DestinationType          string // "" means "cloud-watch-logs"
	LogFormat                string // "" means the default v2 format
}

// LogEvent is one CloudWatch Logs event in a stream.
type LogEvent struct {
	Stream    string
	Timestamp time.Time
	Message   string
}

// state is everything the fake knows; guarded by EC2Fake.mu.
type state struct {
	instances  []Instance
	enis       []ENI
	addresses  []Address
	acls       []NetworkACL
	groups     []SecurityGroup
	flowLogs   []FlowLog
	logs       map[string][]LogEvent // by log group
	ssmManaged map[string]bool
	assumed    int // AssumeRole calls served, for distinct session keys
}

// AddInstance adds instances.
func (f *EC2Fake) AddInstance(in ...Instance) {
	f.locked(func() { f.st.instances = append(f.st.instances, in...) })
}

// AddENI adds network interfaces.
func (f *EC2Fake) AddENI(e ...ENI) { f.locked(func() { f.st.enis = append(f.st.enis, e...) }) }

// AddAddress adds Elastic IPs.
func (f *EC2Fake) AddAddress(a ...Address) {
	f.locked(func() { f.st.addresses = append(f.st.addresses, a...) })
}

// AddNetworkACL adds network ACLs.
func (f *EC2Fake) AddNetworkACL(a ...NetworkACL) {
	f.locked(func() { f.st.acls = append(f.st.acls, a...) })
}

// AddSecurityGroup adds security groups.
func (f *EC2Fake) AddSecurityGroup(g ...SecurityGroup) {
	f.locked(func() { f.st.groups = append(f.st.groups, g...) })
}

// AddFlowLog adds flow logs.
func (f *EC2Fake) AddFlowLog(l ...FlowLog) {
	f.locked(func() { f.st.flowLogs = append(f.st.flowLogs, l...) })
}

// PutLogEvents adds events to a log group, creating it.
func (f *EC2Fake) PutLogEvents(group string, events ...LogEvent) {
	f.locked(func() {
		if f.st.logs == nil {
			f.st.logs = map[string][]LogEvent{}
		}
		f.st.logs[group] = append(f.st.logs[group], events...)
	})
}

// SetSSMManaged marks instances as registered with SSM.
func (f *EC2Fake) SetSSMManaged(ids ...string) {
	f.locked(func() {
		if f.st.ssmManaged == nil {
			f.st.ssmManaged = map[string]bool{}
		}
		for _, id := range ids {
			f.st.ssmManaged[id] = true
		}
	})
}

func (f *EC2Fake) locked(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// filters reads the EC2 form's Filter.N.Name / Filter.N.Value.M pairs.
func filters(form url.Values) map[string][]string {
	out := map[string][]string{}
	for n := 1; form.Has(fmt.Sprintf("Filter.%d.Name", n)); n++ {
		name := form.Get(fmt.Sprintf("Filter.%d.Name", n))
		for m := 1; form.Has(fmt.Sprintf("Filter.%d.Value.%d", n, m)); m++ {
			out[name] = append(out[name], form.Get(fmt.Sprintf("Filter.%d.Value.%d", n, m)))
		}
	}
	return out
}

// list reads a numbered list parameter such as InstanceId.1, InstanceId.2.
func list(form url.Values, name string) []string {
	var out []string
	for n := 1; form.Has(name + "." + strconv.Itoa(n)); n++ {
		out = append(out, form.Get(name+"."+strconv.Itoa(n)))
	}
	return out
}

// matches applies every filter: AND across names, OR across values.
func matches(fs map[string][]string, has func(name string) []string) bool {
	for name, want := range fs {
		if !slices.ContainsFunc(want, func(w string) bool { return slices.Contains(has(name), w) }) {
			return false
		}
	}
	return true
}

// page picks the slice [start, end) of n items for this request and the
// token of the next page. Like AWS, the fake pages before it filters, so
// a page may hold fewer items than asked, or none, and still have a next.
func (f *EC2Fake) page(n int, maxResults, token string) (start, end int, next string, err error) {
	size := f.pageSize
	if maxResults != "" {
		if size, err = strconv.Atoi(maxResults); err != nil || size < 1 {
			return 0, 0, "", errorf(400, "InvalidParameterValue", "bad MaxResults %q", maxResults)
		}
	}
	if token != "" {
		s, ok := strings.CutPrefix(token, "page-")
		if start, err = strconv.Atoi(s); !ok || err != nil || start > n {
			return 0, 0, "", errorf(400, "InvalidNextToken", "bad NextToken %q", token)
		}
	}
	end = min(start+size, n)
	if end < n {
		next = "page-" + strconv.Itoa(end)
	}
	return start, end, next, nil
}

// missing returns the first of ids that has no item, or "".
func missing[T any](ids []string, items []T, id func(T) string) string {
	for _, want := range ids {
		if !slices.ContainsFunc(items, func(it T) bool { return id(it) == want }) {
			return want
		}
	}
	return ""
}

// one returns a single value as a filter answer, none when it is empty.
func one(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}
