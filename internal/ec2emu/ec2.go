package ec2emu

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// AccountID is the account the fake answers for.
const AccountID = "123456789012"

// describe serves a Describe call over items: unknown ids in the request
// are an error (code notFound), then one page is taken, then the ids and
// filters select from it. has gives an item's values for a filter name,
// reporting false for names the fake does not support.
func describe[T, X any](f *EC2Fake, c Call, items []T, ids []string, idOf func(T) string, notFound string,
	has func(T, string) ([]string, bool), conv func(T) X, paged bool) ([]X, string, error) {
	if id := missing(ids, items, idOf); id != "" {
		return nil, "", errorf(400, notFound, "The ID '%s' does not exist", id)
	}
	fs := filters(c.Params)
	var zero T
	for name := range fs {
		if _, ok := has(zero, name); !ok {
			return nil, "", errorf(400, "InvalidParameterValue", "The filter '%s' is invalid", name)
		}
	}
	start, end, next := 0, len(items), ""
	if paged {
		var err error
		if start, end, next, err = f.page(len(items), c.Params.Get("MaxResults"), c.Params.Get("NextToken")); err != nil {
			return nil, "", err
		}
	}
	var out []X
	for _, it := range items[start:end] {
		if len(ids) > 0 && !slices.Contains(ids, idOf(it)) {
			continue
		}
		if matches(fs, func(n string) []string { v, _ := has(it, n); return v }) {
			out = append(out, conv(it))
		}
	}
	return out, next, nil
}

func (f *EC2Fake) describeInstances(c Call) (any, error) {
	has := func(in Instance, name string) ([]string, bool) {
		if key, ok := strings.CutPrefix(name, "tag:"); ok {
			v, set := in.Tags[key]
			if !set {
				return nil, true
			}
			return []string{v}, true
		}
		switch name {
		case "instance-id":
			return one(in.ID), true
		case "ip-address":
			return one(in.PublicIP), true
		case "private-ip-address":
			return one(in.PrivateIP), true
		case "vpc-id":
			return one(in.VPCID), true
		case "subnet-id":
			return one(in.SubnetID), true
		case "instance-state-name":
			return one(stateName(in)), true
		}
		return nil, false
	}
	conv := func(in Instance) xmlReservation {
		return xmlReservation{ID: "r-" + strings.TrimPrefix(in.ID, "i-"), OwnerID: AccountID, Instances: []xmlInstance{f.xmlInstance(in)}}
	}
	rs, next, err := describe(f, c, f.st.instances, list(c.Params, "InstanceId"), func(in Instance) string { return in.ID },
		"InvalidInstanceID.NotFound", has, conv, true)
	if err != nil {
		return nil, err
	}
	return struct {
		Reservations []xmlReservation `xml:"reservationSet>item"`
		NextToken    string           `xml:"nextToken,omitempty"`
	}{rs, next}, nil
}

func stateName(in Instance) string {
	if in.State == "" {
		return "running"
	}
	return in.State
}

func (f *EC2Fake) xmlInstance(in Instance) xmlInstance {
	codes := map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
	x := xmlInstance{
		ID: in.ID, State: xmlInstanceState{Code: codes[stateName(in)], Name: stateName(in)},
		PrivateIP: in.PrivateIP, PublicIP: in.PublicIP, VPCID: in.VPCID, SubnetID: in.SubnetID,
	}
	if !in.LaunchTime.IsZero() {
		x.LaunchTime = in.LaunchTime.UTC().Format(time.RFC3339)
	}
	if in.InstanceProfileARN != "" {
		x.Profile = &xmlProfile{ARN: in.InstanceProfileARN, ID: "AIPAFAKE"}
	}
	for _, g := range in.Groups {
		x.Groups = append(x.Groups, xmlGroup{ID: g, Name: f.groupName(g)})
	}
	for _, k := range sortedKeys(in.Tags) {
		x.Tags = append(x.Tags, xmlTag{Key: k, Value: in.Tags[k]})
	}
	x.Volumes = f.xmlBlockDevices(in.ID)
	if !in.NoInterfaceSet {
		for _, e := range f.st.enis {
			if e.InstanceID == in.ID {
				x.ENIs = append(x.ENIs, f.xmlENI(e))
			}
		}
	}
	return x
}

func (f *EC2Fake) groupName(id string) string {
	for _, g := range f.st.groups {
		if g.ID == id {
			return g.Name
		}
	}
	return ""
}

func (f *EC2Fake) xmlENI(e ENI) xmlENI {
	x := xmlENI{ID: e.ID, SubnetID: e.SubnetID, VPCID: e.VPCID, Description: e.Description,
		InterfaceType: e.InterfaceType, Status: "available"}
	if x.InterfaceType == "" {
		x.InterfaceType = "interface"
	}
	for i, ip := range e.PrivateIPs {
		p := xmlPrivateIP{Address: ip, Primary: i == 0}
		if i == 0 && e.PublicIP != "" {
			p.Association = &xmlAssociation{PublicIP: e.PublicIP}
		}
		x.PrivateIPs = append(x.PrivateIPs, p)
	}
	if len(e.PrivateIPs) > 0 {
		x.PrivateIP = e.PrivateIPs[0]
	}
	if e.PublicIP != "" {
		x.Association = &xmlAssociation{PublicIP: e.PublicIP}
	}
	if e.InstanceID != "" {
		x.Status = "in-use"
		x.Attachment = &xmlAttachment{ID: "eni-attach-" + strings.TrimPrefix(e.ID, "eni-"), InstanceID: e.InstanceID, Status: "attached"}
	}
	for _, g := range e.Groups {
		x.Groups = append(x.Groups, xmlGroup{ID: g, Name: f.groupName(g)})
	}
	return x
}

func (f *EC2Fake) describeNetworkInterfaces(c Call) (any, error) {
	has := func(e ENI, name string) ([]string, bool) {
		switch name {
		case "network-interface-id":
			return one(e.ID), true
		case "association.public-ip":
			return one(e.PublicIP), true
		case "attachment.instance-id":
			return one(e.InstanceID), true
		case "subnet-id":
			return one(e.SubnetID), true
		case "vpc-id":
			return one(e.VPCID), true
		case "group-id":
			return e.Groups, true
		case "private-ip-address":
			return e.PrivateIPs, true
		}
		return nil, false
	}
	out, next, err := describe(f, c, f.st.enis, list(c.Params, "NetworkInterfaceId"), func(e ENI) string { return e.ID },
		"InvalidNetworkInterfaceID.NotFound", has, f.xmlENI, true)
	if err != nil {
		return nil, err
	}
	return struct {
		ENIs      []xmlENI `xml:"networkInterfaceSet>item"`
		NextToken string   `xml:"nextToken,omitempty"`
	}{out, next}, nil
}

func (f *EC2Fake) describeAddresses(c Call) (any, error) {
	has := func(a Address, name string) ([]string, bool) {
		switch name {
		case "public-ip":
			return one(a.PublicIP), true
		case "allocation-id":
			return one(a.AllocationID), true
		case "association-id":
			return one(a.AssociationID), true
		case "instance-id":
			return one(a.InstanceID), true
		case "network-interface-id":
			return one(a.ENIID), true
		}
		return nil, false
	}
	conv := func(a Address) xmlAddress {
		return xmlAddress{PublicIP: a.PublicIP, AllocationID: a.AllocationID, AssociationID: a.AssociationID, Domain: "vpc",
			InstanceID: a.InstanceID, ENIID: a.ENIID, PrivateIP: a.PrivateIP}
	}
	// DescribeAddresses is not paginated on AWS.
	out, _, err := describe(f, c, f.st.addresses, list(c.Params, "PublicIp"), func(a Address) string { return a.PublicIP },
		"InvalidAddress.NotFound", has, conv, false)
	if err != nil {
		return nil, err
	}
	return struct {
		Addresses []xmlAddress `xml:"addressesSet>item"`
	}{out}, nil
}

func (f *EC2Fake) describeNetworkAcls(c Call) (any, error) {
	has := func(a NetworkACL, name string) ([]string, bool) {
		switch name {
		case "network-acl-id", "association.network-acl-id":
			return one(a.ID), true
		case "vpc-id":
			return one(a.VPCID), true
		case "default":
			return []string{strconv.FormatBool(a.Default)}, true
		case "association.subnet-id":
			return a.Subnets, true
		}
		return nil, false
	}
	conv := func(a NetworkACL) xmlACL {
		x := xmlACL{ID: a.ID, VPCID: a.VPCID, Default: a.Default}
		for _, e := range a.Entries {
			xe := xmlACLEntry{RuleNumber: e.RuleNumber, Protocol: e.Protocol, Action: e.Action, Egress: e.Egress, CIDR: e.CIDR, IPv6CIDR: e.IPv6CIDR}
			if e.Protocol == "6" || e.Protocol == "17" {
				xe.PortRange = &xmlPortRange{From: e.FromPort, To: e.ToPort}
			}
			x.Entries = append(x.Entries, xe)
		}
		for _, s := range a.Subnets {
			x.Associations = append(x.Associations, xmlACLAssociation{ID: "aclassoc-" + strings.TrimPrefix(s, "subnet-"), ACLID: a.ID, SubnetID: s})
		}
		return x
	}
	out, next, err := describe(f, c, f.st.acls, list(c.Params, "NetworkAclId"), func(a NetworkACL) string { return a.ID },
		"InvalidNetworkAclID.NotFound", has, conv, true)
	if err != nil {
		return nil, err
	}
	return struct {
		ACLs      []xmlACL `xml:"networkAclSet>item"`
		NextToken string   `xml:"nextToken,omitempty"`
	}{out, next}, nil
}

func (f *EC2Fake) describeSecurityGroups(c Call) (any, error) {
	has := func(g SecurityGroup, name string) ([]string, bool) {
		switch name {
		case "group-id":
			return one(g.ID), true
		case "group-name":
			return one(g.Name), true
		case "vpc-id":
			return one(g.VPCID), true
		}
		return nil, false
	}
	perms := func(rules []SGRule) []xmlPermission {
		var out []xmlPermission
		for _, r := range rules {
			p := xmlPermission{Protocol: r.Protocol}
			if r.Protocol != "-1" {
				p.FromPort, p.ToPort = &r.FromPort, &r.ToPort
			}
			for _, c := range r.CIDRs {
				p.Ranges = append(p.Ranges, xmlCIDR{c})
			}
			for _, c := range r.IPv6CIDRs {
				p.Ranges6 = append(p.Ranges6, xmlCIDRv6{c})
			}
			for _, g := range r.Groups {
				p.Groups = append(p.Groups, xmlGroup{ID: g})
			}
			out = append(out, p)
		}
		return out
	}
	conv := func(g SecurityGroup) xmlSecurityGroup {
		return xmlSecurityGroup{ID: g.ID, Name: g.Name, VPCID: g.VPCID, OwnerID: AccountID, Ingress: perms(g.Ingress), Egress: perms(g.Egress)}
	}
	out, next, err := describe(f, c, f.st.groups, list(c.Params, "GroupId"), func(g SecurityGroup) string { return g.ID },
		"InvalidGroup.NotFound", has, conv, true)
	if err != nil {
		return nil, err
	}
	return struct {
		Groups    []xmlSecurityGroup `xml:"securityGroupInfo>item"`
		NextToken string             `xml:"nextToken,omitempty"`
	}{out, next}, nil
}

func (f *EC2Fake) describeFlowLogs(c Call) (any, error) {
	has := func(l FlowLog, name string) ([]string, bool) {
		switch name {
		case "flow-log-id":
			return one(l.ID), true
		case "resource-id":
			return one(l.ResourceID), true
		case "log-group-name":
			return one(l.LogGroup), true
		case "log-destination-type":
			return one(destinationType(l)), true
		}
		return nil, false
	}
	conv := func(l FlowLog) xmlFlowLog {
		format := l.LogFormat
		if format == "" {
			format = DefaultFlowLogFormat
		}
		return xmlFlowLog{ID: l.ID, ResourceID: l.ResourceID, LogGroup: l.LogGroup, DestinationType: destinationType(l),
			LogFormat: format, Status: "ACTIVE", DeliverStatus: "SUCCESS", TrafficType: "ALL"}
	}
	out, next, err := describe(f, c, f.st.flowLogs, list(c.Params, "FlowLogId"), func(l FlowLog) string { return l.ID },
		"InvalidFlowLogId.NotFound", has, conv, true)
	if err != nil {
		return nil, err
	}
	return struct {
		FlowLogs  []xmlFlowLog `xml:"flowLogSet>item"`
		NextToken string       `xml:"nextToken,omitempty"`
	}{out, next}, nil
}

func destinationType(l FlowLog) string {
	if l.DestinationType == "" {
		return "cloud-watch-logs"
	}
	return l.DestinationType
}
