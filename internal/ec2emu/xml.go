package ec2emu

// The EC2 reply elements the fake writes, named as the 2016-11-15 XML
// that aws-sdk-go-v2's ec2query deserializers read. Lists are
// <xxxSet><item>…</item></xxxSet>.

type xmlGroup struct {
	ID   string `xml:"groupId"`
	Name string `xml:"groupName,omitempty"`
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlAssociation struct {
	PublicIP string `xml:"publicIp"`
}

type xmlPrivateIP struct {
	Address     string          `xml:"privateIpAddress"`
	Primary     bool            `xml:"primary"`
	Association *xmlAssociation `xml:"association,omitempty"`
}

type xmlAttachment struct {
	ID          string `xml:"attachmentId"`
	InstanceID  string `xml:"instanceId,omitempty"`
	DeviceIndex int    `xml:"deviceIndex"`
	Status      string `xml:"status"`
}

type xmlENI struct {
	ID            string          `xml:"networkInterfaceId"`
	SubnetID      string          `xml:"subnetId,omitempty"`
	VPCID         string          `xml:"vpcId,omitempty"`
	Description   string          `xml:"description,omitempty"`
	InterfaceType string          `xml:"interfaceType"`
	Status        string          `xml:"status"`
	PrivateIP     string          `xml:"privateIpAddress,omitempty"`
	PrivateIPs    []xmlPrivateIP  `xml:"privateIpAddressesSet>item"`
	Association   *xmlAssociation `xml:"association,omitempty"`
	Attachment    *xmlAttachment  `xml:"attachment,omitempty"`
	Groups        []xmlGroup      `xml:"groupSet>item"`
}

type xmlInstanceState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xmlProfile struct {
	ARN string `xml:"arn"`
	ID  string `xml:"id"`
}

type xmlInstance struct {
	ID         string           `xml:"instanceId"`
	State      xmlInstanceState `xml:"instanceState"`
	PrivateIP  string           `xml:"privateIpAddress,omitempty"`
	PublicIP   string           `xml:"ipAddress,omitempty"`
	VPCID      string           `xml:"vpcId,omitempty"`
	SubnetID   string           `xml:"subnetId,omitempty"`
	LaunchTime string           `xml:"launchTime,omitempty"`
	Profile    *xmlProfile      `xml:"iamInstanceProfile,omitempty"`
	Groups     []xmlGroup       `xml:"groupSet>item"`
	Tags       []xmlTag         `xml:"tagSet>item"`
	ENIs       []xmlENI         `xml:"networkInterfaceSet>item"`
	Volumes    []xmlBlockDevice `xml:"blockDeviceMapping>item"` // snapshot.go
}

type xmlReservation struct {
	ID        string        `xml:"reservationId"`
	OwnerID   string        `xml:"ownerId"`
	Instances []xmlInstance `xml:"instancesSet>item"`
}

type xmlAddress struct {
	PublicIP      string `xml:"publicIp"`
	AllocationID  string `xml:"allocationId,omitempty"`
	AssociationID string `xml:"associationId,omitempty"`
	Domain        string `xml:"domain"`
	InstanceID    string `xml:"instanceId,omitempty"`
	ENIID         string `xml:"networkInterfaceId,omitempty"`
	PrivateIP     string `xml:"privateIpAddress,omitempty"`
}

type xmlPortRange struct {
	From int32 `xml:"from"`
	To   int32 `xml:"to"`
}

type xmlACLEntry struct {
	RuleNumber int32         `xml:"ruleNumber"`
	Protocol   string        `xml:"protocol"`
	Action     string        `xml:"ruleAction"`
	Egress     bool          `xml:"egress"`
	CIDR       string        `xml:"cidrBlock,omitempty"`
	IPv6CIDR   string        `xml:"ipv6CidrBlock,omitempty"`
	PortRange  *xmlPortRange `xml:"portRange,omitempty"`
}

type xmlACLAssociation struct {
	ID       string `xml:"networkAclAssociationId"`
	ACLID    string `xml:"networkAclId"`
	SubnetID string `xml:"subnetId"`
}

type xmlACL struct {
	ID           string              `xml:"networkAclId"`
	VPCID        string              `xml:"vpcId"`
	Default      bool                `xml:"default"`
	Entries      []xmlACLEntry       `xml:"entrySet>item"`
	Associations []xmlACLAssociation `xml:"associationSet>item"`
}

type xmlCIDR struct {
	CIDR string `xml:"cidrIp"`
}

type xmlCIDRv6 struct {
	CIDR string `xml:"cidrIpv6"`
}

type xmlPermission struct {
	Protocol string      `xml:"ipProtocol"`
	FromPort *int32      `xml:"fromPort,omitempty"`
	ToPort   *int32      `xml:"toPort,omitempty"`
	Ranges   []xmlCIDR   `xml:"ipRanges>item"`
	Ranges6  []xmlCIDRv6 `xml:"ipv6Ranges>item"`
	Groups   []xmlGroup  `xml:"groups>item"`
}

type xmlSecurityGroup struct {
	ID      string          `xml:"groupId"`
	Name    string          `xml:"groupName"`
	VPCID   string          `xml:"vpcId"`
	OwnerID string          `xml:"ownerId"`
	Ingress []xmlPermission `xml:"ipPermissions>item"`
	Egress  []xmlPermission `xml:"ipPermissionsEgress>item"`
}

type xmlFlowLog struct {
	ID              string `xml:"flowLogId"`
	ResourceID      string `xml:"resourceId"`
	LogGroup        string `xml:"logGroupName,omitempty"`
	DestinationType string `xml:"logDestinationType"`
	LogFormat       string `xml:"logFormat"`
	Status          string `xml:"flowLogStatus"`
	DeliverStatus   string `xml:"deliverLogsStatus"`
	TrafficType     string `xml:"trafficType"`
}

// DefaultFlowLogFormat is the format AWS reports for a flow log created
// without one: version 2.
const DefaultFlowLogFormat = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} " +
	"${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}"
