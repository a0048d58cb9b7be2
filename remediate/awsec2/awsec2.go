// Package awsec2 is the remediate.Backend for EC2: egress deny entries in
// the subnet's network ACL (KindNACL), a per-case copy of the instance's
// security groups without the abused egress (KindSecurityGroup), and
// quarantine behind an isolation group (KindQuarantine), optionally after
// forensic EBS snapshots of the instance's volumes, which unblock keeps.
//
// One Backend serves one account in one region; the caller routes each
// remediate.InstanceRef to the right Backend. Every change is found again
// by its content (an ACL entry) or by the tags it leaves behind (the
// per-case group, the quarantine tags), so Apply after a crash changes
// nothing twice, and Undo from another process restores exactly what was
// there before. AWS error codes are mapped here and nowhere else: see
// IsPermanent.
package awsec2

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/abuse-responder/abuse-responder/internal/awsconf"
	"github.com/abuse-responder/abuse-responder/remediate"
)

// Options says how to reach one account in one region.
type Options struct {
	Region string
	// EndpointURL is "" for AWS; else EC2 and STS (for the assume-role)
	// go there, e.g. a moto_server.
	EndpointURL string
	// RoleARN is the role to assume in the account; "" uses the default
	// credential chain (AWS_* variables, shared files, instance role).
	RoleARN    string
	ExternalID string
	// MaxAttempts is the SDK's attempts per call; 0 keeps the SDK default
	// (the standard retryer, which retries throttling with backoff).
	MaxAttempts int
	// RuleBand is remediate.Policy.RuleBand. Apply needs it when the
	// planned rule number was taken in the meantime, to pick another one
	// inside the band; zero means Apply may use only the planned number.
	RuleBand [2]int32
}

// EC2API is the part of *ec2.Client this package calls.
type EC2API interface {
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	DescribeNetworkAcls(context.Context, *ec2.DescribeNetworkAclsInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeTags(context.Context, *ec2.DescribeTagsInput, ...func(*ec2.Options)) (*ec2.DescribeTagsOutput, error)
	CreateNetworkAclEntry(context.Context, *ec2.CreateNetworkAclEntryInput, ...func(*ec2.Options)) (*ec2.CreateNetworkAclEntryOutput, error)
	DeleteNetworkAclEntry(context.Context, *ec2.DeleteNetworkAclEntryInput, ...func(*ec2.Options)) (*ec2.DeleteNetworkAclEntryOutput, error)
	CreateSecurityGroup(context.Context, *ec2.CreateSecurityGroupInput, ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	DeleteSecurityGroup(context.Context, *ec2.DeleteSecurityGroupInput, ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error)
	AuthorizeSecurityGroupEgress(context.Context, *ec2.AuthorizeSecurityGroupEgressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupEgressOutput, error)
	AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	RevokeSecurityGroupEgress(context.Context, *ec2.RevokeSecurityGroupEgressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupEgressOutput, error)
	ModifyInstanceAttribute(context.Context, *ec2.ModifyInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error)
	ModifyNetworkInterfaceAttribute(context.Context, *ec2.ModifyNetworkInterfaceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DeleteTags(context.Context, *ec2.DeleteTagsInput, ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error)
	CreateSnapshot(context.Context, *ec2.CreateSnapshotInput, ...func(*ec2.Options)) (*ec2.CreateSnapshotOutput, error)
	DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
}

// Backend implements remediate.Backend for KindNACL, KindSecurityGroup
// and KindQuarantine in one account and region. It keeps no state of its
// own between calls, so it is safe for concurrent use; two Applies that
// race for one ACL rule number are settled by EC2 itself (see applyNACL).
type Backend struct {
	ec2    EC2API
	region string
	band   [2]int32
	now    func() time.Time
}

var _ remediate.Backend = (*Backend)(nil)

// New builds the EC2 client for o. With a RoleARN it assumes that role
// (with ExternalID when set) through STS at the same endpoint; the
// credentials are fetched on first use, so New itself makes no call.
func New(ctx context.Context, o Options) (*Backend, error) {
	cfg, err := awsconf.Load(ctx, awsconf.Options{Region: o.Region, EndpointURL: o.EndpointURL,
		RoleARN: o.RoleARN, ExternalID: o.ExternalID, MaxAttempts: o.MaxAttempts})
	if err != nil {
		return nil, fmt.Errorf("awsec2: %w", err)
	}
	return NewFromConfig(cfg, o.RuleBand), nil
}

// NewFromConfig is a Backend over an EC2 client made from cfg (such as
// one of awsconf.Accounts, whose credentials other clients share), in
// cfg.Region, with band as Options.RuleBand. It makes no call.
func NewFromConfig(cfg aws.Config, band [2]int32) *Backend {
	b := NewWithClient(ec2.NewFromConfig(cfg))
	b.region, b.band = cfg.Region, band
	return b
}

// NewWithClient is a Backend over api, such as an *ec2.Client built by
// the caller. Its rule band for renumbering in Apply is unset; use
// WithRuleBand to set it.
func NewWithClient(api EC2API) *Backend {
	return &Backend{ec2: api, now: time.Now}
}

// WithRuleBand sets the band (Options.RuleBand) and returns b.
func (b *Backend) WithRuleBand(band [2]int32) *Backend {
	b.band = band
	return b
}

// Kinds lists the kinds this backend plans and applies.
func (b *Backend) Kinds() []remediate.Kind {
	return []remediate.Kind{remediate.KindNACL, remediate.KindSecurityGroup, remediate.KindQuarantine}
}

// Plan proposes, for each kind of in.Policy.Kinds that this backend
// serves, the actions on in.Instances, reading state and changing
// nothing. An instance carrying the protect tag stops the whole plan:
// no actions, and a Refusal that names it.
func (b *Backend) Plan(ctx context.Context, in remediate.Input) ([]remediate.Action, []remediate.Refusal, error) {
	insts, refusals, err := b.instances(ctx, in)
	if err != nil || len(refusals) > 0 {
		return nil, refusals, err
	}
	var actions []remediate.Action
	for _, k := range in.Policy.Kinds {
		var as []remediate.Action
		var rs []remediate.Refusal
		switch k {
		case remediate.KindNACL:
			as, rs, err = b.planNACL(ctx, in, insts)
		case remediate.KindSecurityGroup:
			as, rs, err = b.planSecurityGroup(ctx, in, insts)
		case remediate.KindQuarantine:
			as, rs, err = b.planQuarantine(ctx, in, insts)
		default:
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		actions, refusals = append(actions, as...), append(refusals, rs...)
	}
	return actions, refusals, nil
}

// Apply makes a's change unless it is there already; see the kinds'
// apply functions for what "there already" means.
func (b *Backend) Apply(ctx context.Context, a remediate.Action, dryRun bool) (remediate.Change, error) {
	var c remediate.Change
	var err error
	switch a.Kind {
	case remediate.KindNACL:
		c, err = b.applyNACL(ctx, a, dryRun)
	case remediate.KindSecurityGroup:
		c, err = b.applySecurityGroup(ctx, a, dryRun)
	case remediate.KindQuarantine:
		c, err = b.applyQuarantine(ctx, a, dryRun)
	default:
		return remediate.Change{}, permanentf("awsec2 cannot apply kind %q (%s)", a.Kind, a.Key)
	}
	c.Key, c.Kind, c.At = a.Key, a.Kind, b.now().UTC()
	return c, err
}

// Verify reads back whether a's change is in place and holds.
func (b *Backend) Verify(ctx context.Context, a remediate.Action) (remediate.Check, error) {
	var c remediate.Check
	var err error
	switch a.Kind {
	case remediate.KindNACL:
		c, err = b.verifyNACL(ctx, a)
	case remediate.KindSecurityGroup:
		c, err = b.verifySecurityGroup(ctx, a)
	case remediate.KindQuarantine:
		c, err = b.verifyQuarantine(ctx, a)
	default:
		return remediate.Check{}, permanentf("awsec2 cannot verify kind %q (%s)", a.Kind, a.Key)
	}
	c.Key = a.Key
	return c, err
}

// Undo reverts c, restoring what c.Before recorded, and leaves alone
// whatever someone else has changed since. Undoing what is already gone,
// or a dry run, is not an error.
func (b *Backend) Undo(ctx context.Context, c remediate.Change) error {
	switch c.Kind {
	case remediate.KindNACL:
		return b.undoNACL(ctx, c)
	case remediate.KindSecurityGroup:
		return b.undoSecurityGroup(ctx, c)
	case remediate.KindQuarantine:
		return b.undoQuarantine(ctx, c)
	}
	return permanentf("awsec2 cannot undo kind %q (%s)", c.Kind, c.Key)
}
