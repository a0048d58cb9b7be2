package awstest

import (
	"testing"

	"github.com/abuse-responder/abuse-responder/internal/ec2emu"
)

// The EC2 fake lives in internal/ec2emu, which does not import "testing",
// so that the demo binary can run on it too. These aliases keep the tests'
// names (awstest.EC2Fake, awstest.Instance, …) working unchanged.

// EC2Fake is ec2emu.EC2Fake: the EC2, STS, CloudWatch Logs and SSM fake.
type EC2Fake = ec2emu.EC2Fake

// The fake's state and call types.
type (
	Call          = ec2emu.Call
	Instance      = ec2emu.Instance
	ENI           = ec2emu.ENI
	Address       = ec2emu.Address
	NetworkACL    = ec2emu.NetworkACL
	ACLEntry      = ec2emu.ACLEntry
	SecurityGroup = ec2emu.SecurityGroup
	SGRule        = ec2emu.SGRule
	FlowLog       = ec2emu.FlowLog
	LogEvent      = ec2emu.LogEvent
	CommandResult = ec2emu.CommandResult
	SentCommand   = ec2emu.SentCommand
	Volume        = ec2emu.Volume
	Snapshot      = ec2emu.Snapshot
)

// The fake's constants.
const (
	AccountID            = ec2emu.AccountID
	AssumedAccessKeyID   = ec2emu.AssumedAccessKeyID
	DefaultFlowLogFormat = ec2emu.DefaultFlowLogFormat
)

// NewEC2Fake starts the fake on 127.0.0.1 and closes it in t.Cleanup.
func NewEC2Fake(t testing.TB) *EC2Fake {
	t.Helper()
	f, err := ec2emu.Start()
	if err != nil {
		t.Fatalf("start the EC2 fake: %v", err)
	}
	t.Cleanup(f.Close)
	return f
}
