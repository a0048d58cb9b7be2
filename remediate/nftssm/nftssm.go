// Package nftssm blocks abuse with nftables on an instance the daemon
// does not run on: the same table, rules and elements as remediate/nft,
// made by `abuse-responder nft apply|verify|undo -` on the instance,
// which this package runs through SSM Run Command (internal/ssmrun).
//
// The request travels base64-encoded on the command's stdin and is
// checked again on the instance (ParseRequest); the answer is the host
// backend's Change or Check as one JSON line on stdout. A Change's state
// is kept with the account, region and instance it was made on, so that
// Undo from another process reaches the same instance.
package nftssm

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/abuse-responder/abuse-responder/internal/awsconf"
	"github.com/abuse-responder/abuse-responder/internal/ssmrun"
	"github.com/abuse-responder/abuse-responder/remediate"
)

// DefaultBinary is the program's path on the instances when
// Options.Binary is empty.
const DefaultBinary = "/usr/local/bin/abuse-responder"

// Options configures a Backend.
type Options struct {
	// AWS are the accounts whose instances may be changed (an action in
	// another account is refused), with the endpoint and attempts of
	// their clients; their configs may be shared with other backends.
	AWS *awsconf.Accounts
	// Regions are asked, in every account, by an Undo whose change was
	// never recorded (so its instance's region is unknown).
	Regions []string
	// Binary is this program's path on the instances; DefaultBinary
	// when empty. It is the one word of the command not encoded.
	Binary string
}

// Backend implements remediate.Backend for remediate.KindNftables on
// instances through SSM. It is safe for concurrent use.
type Backend struct {
	opts Options

	mu      sync.Mutex
	clients map[string]*clients // by "account/region"
}

var _ remediate.Backend = (*Backend)(nil)

// clients are the AWS clients of one account and region.
type clients struct {
	ssm ssmrun.SSMAPI
	ec2 *ec2.Client
}

var instanceIDRE = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)

// New returns a Backend for o. It makes no call: the clients of an
// account and region are built on first use.
func New(o Options) (*Backend, error) {
	if o.Binary == "" {
		o.Binary = DefaultBinary
	}
	if !ssmrun.ValidBinary(o.Binary) {
		return nil, fmt.Errorf("nftssm: remote binary %q is not a plain absolute path", o.Binary)
	}
	if o.AWS == nil {
		o.AWS = &awsconf.Accounts{} // no account: every action is refused
	}
	return &Backend{opts: o, clients: map[string]*clients{}}, nil
}

// Kinds returns remediate.KindNftables.
func (b *Backend) Kinds() []remediate.Kind {
	return []remediate.Kind{remediate.KindNftables}
}

// place checks that account and region are ones we may act in. Its
// errors are permanent: no retry puts an account in the config.
func (b *Backend) place(account, region string) error {
	if _, err := b.opts.AWS.Check(account, region); err != nil {
		return remediate.MarkPermanent(fmt.Errorf("nftssm: %w", err))
	}
	return nil
}

// get returns the clients of account and region, made on first use from
// the account's shared config.
func (b *Backend) get(ctx context.Context, account, region string) (*clients, error) {
	if err := b.place(account, region); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	key := account + "/" + region
	if c, ok := b.clients[key]; ok {
		return c, nil
	}
	cfg, err := b.opts.AWS.Config(ctx, account, region)
	if err != nil {
		return nil, fmt.Errorf("nftssm: %w", err)
	}
	c := &clients{ssm: ssm.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg)}
	b.clients[key] = c
	return c, nil
}

// classify marks what retrying cannot cure as permanent: the instance
// cannot take commands, the role may not send them, or the instance's
// program is missing or too old to know `nft` (exit 127, 126, or 2 for
// a usage error). Other failures (a timeout, the lock, netlink) are
// temporary and the engine retries them.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if ssmrun.IsNotManaged(err) || ssmrun.IsAccessDenied(err) {
		return remediate.MarkPermanent(err)
	}
	var ce *ssmrun.CommandError
	if errors.As(err, &ce) && ce.Status == "Failed" && (ce.ExitCode == 2 || ce.ExitCode == 126 || ce.ExitCode == 127) {
		return remediate.MarkPermanent(err)
	}
	return err
}
