// Package cloud gathers the AWS facts about an abuse case: which instance
// a notice names and how it is reachable (network ACL, security groups,
// network interfaces, SSM), and what VPC flow logs saw it send. It only
// reads; remediate/awsec2 makes the changes.
//
// AWS error codes stay in this package: callers ask IsAccessDenied and
// IsNotFound. Throttling is retried by the SDK's standard retryer.
package cloud

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/abuse-responder/abuse-responder/internal/awsconf"
)

// Options says how to reach one account in one region; remediation
// reaches accounts the same way.
type Options = awsconf.Options

// EC2API is the part of *ec2.Client this package calls.
type EC2API interface {
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	DescribeAddresses(context.Context, *ec2.DescribeAddressesInput, ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error)
	DescribeNetworkAcls(context.Context, *ec2.DescribeNetworkAclsInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeFlowLogs(context.Context, *ec2.DescribeFlowLogsInput, ...func(*ec2.Options)) (*ec2.DescribeFlowLogsOutput, error)
}

// LogsAPI is the part of *cloudwatchlogs.Client this package calls.
type LogsAPI interface {
	FilterLogEvents(context.Context, *cloudwatchlogs.FilterLogEventsInput, ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error)
}

// SSMAPI is the part of *ssm.Client this package calls.
type SSMAPI interface {
	DescribeInstanceInformation(context.Context, *ssm.DescribeInstanceInformationInput, ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
	SendCommand(context.Context, *ssm.SendCommandInput, ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	GetCommandInvocation(context.Context, *ssm.GetCommandInvocationInput, ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
}

// Clients holds the service clients for one account and region. The
// methods only read, and are safe for concurrent use.
type Clients struct {
	EC2    EC2API
	Logs   LogsAPI
	SSM    SSMAPI
	Region string
}

// NewClients builds the clients for o. With a RoleARN it assumes that
// role (with ExternalID when set) through STS at the same endpoint; the
// credentials are fetched on first use and refreshed before they expire,
// so NewClients itself makes no call.
func NewClients(ctx context.Context, o Options) (*Clients, error) {
	cfg, err := awsconf.Load(ctx, o)
	if err != nil {
		return nil, err
	}
	return NewClientsFromConfig(cfg), nil
}

// NewClientsFromConfig builds the clients of cfg's account and region
// (such as a config of awsconf.Accounts, whose credentials other clients
// share). It makes no call.
func NewClientsFromConfig(cfg aws.Config) *Clients {
	return &Clients{
		EC2:    ec2.NewFromConfig(cfg),
		Logs:   cloudwatchlogs.NewFromConfig(cfg),
		SSM:    ssm.NewFromConfig(cfg),
		Region: cfg.Region,
	}
}
