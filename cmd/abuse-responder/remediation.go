package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/abuse-responder/abuse-responder/analyze"
	"github.com/abuse-responder/abuse-responder/analyze/cloud"
	"github.com/abuse-responder/abuse-responder/config"
	"github.com/abuse-responder/abuse-responder/internal/awsconf"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/remediate/awsec2"
	"github.com/abuse-responder/abuse-responder/remediate/nft"
	"github.com/abuse-responder/abuse-responder/store"
)

// remediation is the wired remediation stage: the engine, its backends
// and the policy. It is the daemon's Blocker and what plan, apply,
// unblock and blocks use.
type remediation struct {
	engine       *remediate.Engine
	backends     []remediate.Backend
	policy       remediate.Policy
	closers      []func() error
	aws          *awsconf.Accounts // shared by the backends and the flow logs that decide expiry
	flowLogGroup string
}

func (r *remediation) Close() {
	for _, c := range r.closers {
		c()
	}
}

// newRemediation wires the backends the config's actions need.
func newRemediation(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*remediation, error) {
	p := policyOf(cfg)
	r := &remediation{policy: p, flowLogGroup: cfg.Analyze.FlowLogGroup, aws: awsAccounts(cfg)}
	var ec2Kinds bool
	for _, k := range p.Kinds {
		switch k {
		case remediate.KindNACL, remediate.KindSecurityGroup, remediate.KindQuarantine:
			ec2Kinds = true
		case remediate.KindNftables:
			if cfg.Remediate.NftablesOn == "instance" {
				b, err := newNftSSM(cfg, r.aws)
				if err != nil {
					return nil, fmt.Errorf("nftables on the instance: %w", err)
				}
				r.backends = append(r.backends, b)
				continue
			}
			b, err := nft.New(nft.Options{VerifyConnect: true})
			if err != nil {
				return nil, fmt.Errorf("nftables: %w", err)
			}
			r.backends = append(r.backends, b)
			r.closers = append(r.closers, b.Close)
		}
	}
	if ec2Kinds {
		if len(cfg.AWS.Accounts) == 0 {
			return nil, errors.New("remediate.actions asks for EC2 blocks, but [[aws.accounts]] is empty")
		}
		b, err := withProbe(cfg, r.aws, &fleet{aws: r.aws, regions: cfg.AWS.Regions, band: p.RuleBand, backends: map[string]*awsec2.Backend{}})
		if err != nil {
			return nil, err
		}
		r.backends = append(r.backends, b)
	}
	r.engine = &remediate.Engine{Store: st, Backends: r.backends, Log: log, BlockTTL: cfg.Remediate.BlockTTL}
	return r, nil
}

// awsAccounts is cfg's [[aws.accounts]], whose configs (and assumed-role
// credentials) the backends of one process share.
func awsAccounts(cfg *config.Config) *awsconf.Accounts {
	a := &awsconf.Accounts{EndpointURL: cfg.AWS.EndpointURL}
	for _, acct := range cfg.AWS.Accounts {
		a.List = append(a.List, awsconf.Account{ID: acct.ID, RoleARN: acct.RoleARN, ExternalID: acct.ExternalID})
	}
	return a
}

func policyOf(cfg *config.Config) remediate.Policy {
	p := remediate.Policy{
		Allowlist: cfg.Remediate.Allowlist, ProtectTag: cfg.Remediate.ProtectTag,
		RuleBand:        [2]int32{int32(cfg.Remediate.NACLRuleBand[0]), int32(cfg.Remediate.NACLRuleBand[1])},
		QuarantineGroup: cfg.Remediate.QuarantineGroup, DryRun: cfg.Remediate.DryRun, Snapshots: cfg.Remediate.Snapshots,
		// The engine owns expiry (Expire checks telemetry first); a kernel
		// timeout would lift a block the engine decided to extend.
		BlockTTL: 0,
	}
	for _, a := range cfg.Remediate.Actions {
		p.Kinds = append(p.Kinds, remediate.Kind(a))
	}
	return p
}

// Plan is the daemon's Blocker.Plan: the case's targets (from the
// analysis, which also resolved address-only resources) on its instances.
func (r *remediation) Plan(ctx context.Context, c store.Case, an *analyze.Analysis) (remediate.Plan, error) {
	return remediate.BuildPlan(ctx, r.input(c, an), r.backends)
}

// Apply is the daemon's Blocker.Apply.
func (r *remediation) Apply(ctx context.Context, p remediate.Plan) (remediate.Result, error) {
	return r.engine.Apply(ctx, p)
}

func (r *remediation) input(c store.Case, an *analyze.Analysis) remediate.Input {
	in := remediate.Input{CaseID: c.ID, Type: c.Type, Targets: c.Notice.Targets, Policy: r.policy}
	seen := map[string]bool{}
	if an != nil {
		in.Targets = an.Targets
		for _, res := range an.Resources {
			if res.Found && res.InstanceID != "" && !seen[res.InstanceID] {
				seen[res.InstanceID] = true
				in.Instances = append(in.Instances, remediate.InstanceRef{ID: res.InstanceID, Region: res.Region, Account: c.AccountID})
			}
		}
	}
	for _, res := range c.Notice.Resources {
		if res.InstanceID == "" || seen[res.InstanceID] {
			continue
		}
		seen[res.InstanceID] = true
		region := res.Region
		if region == "" && len(c.Notice.Regions) > 0 {
			region = c.Notice.Regions[0]
		}
		in.Instances = append(in.Instances, remediate.InstanceRef{ID: res.InstanceID, Region: region, Account: c.AccountID})
	}
	return in
}

// fleet is the EC2 backend of every configured account and region: it
// routes each instance and action to the awsec2.Backend of its account
// and region, made on first use.
type fleet struct {
	aws     *awsconf.Accounts
	regions []string // [aws] regions, asked by undoEverywhere
	band    [2]int32

	mu       sync.Mutex
	backends map[string]*awsec2.Backend // "account/region"
}

func (f *fleet) Kinds() []remediate.Kind {
	return []remediate.Kind{remediate.KindNACL, remediate.KindSecurityGroup, remediate.KindQuarantine}
}

func (f *fleet) get(ctx context.Context, account, region string) (*awsec2.Backend, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := account + "/" + region
	if b, ok := f.backends[key]; ok {
		return b, nil
	}
	cfg, err := f.aws.Config(ctx, account, region)
	if errors.Is(err, awsconf.ErrNotConfigured) {
		return nil, remediate.MarkPermanent(err)
	}
	if err != nil {
		return nil, fmt.Errorf("awsec2: %w", err)
	}
	b := awsec2.NewFromConfig(cfg, f.band)
	f.backends[key] = b
	return b, nil
}

func (f *fleet) Plan(ctx context.Context, in remediate.Input) ([]remediate.Action, []remediate.Refusal, error) {
	var acts []remediate.Action
	var refused []remediate.Refusal
	groups := map[string][]remediate.InstanceRef{}
	var order []string
	for _, ref := range in.Instances {
		k := ref.Account + "/" + ref.Region
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], ref)
	}
	for _, k := range order {
		refs := groups[k]
		b, err := f.get(ctx, refs[0].Account, refs[0].Region)
		if err != nil {
			return nil, nil, err
		}
		sub := in
		sub.Instances = refs
		a, r, err := b.Plan(ctx, sub)
		if err != nil {
			return nil, nil, err
		}
		for i := range a {
			a[i].Account, a[i].Region = refs[0].Account, refs[0].Region
		}
		acts, refused = append(acts, a...), append(refused, r...)
	}
	return acts, refused, nil
}

// routed is how a fleet keeps the account and region of a change, so that
// unblock (maybe in another process) sends the undo to the right place.
type routed struct {
	Account string          `json:"account"`
	Region  string          `json:"region"`
	State   json.RawMessage `json:"state"`
}

func (f *fleet) Apply(ctx context.Context, a remediate.Action, dryRun bool) (remediate.Change, error) {
	b, err := f.get(ctx, a.Account, a.Region)
	if err != nil {
		return remediate.Change{}, err
	}
	c, err := b.Apply(ctx, a, dryRun)
	if err != nil {
		return c, err
	}
	c.Before, err = wrapRouted(a, c.Before)
	if err != nil {
		return c, err
	}
	c.After, err = wrapRouted(a, c.After)
	return c, err
}

func wrapRouted(a remediate.Action, state json.RawMessage) (json.RawMessage, error) {
	return json.Marshal(routed{Account: a.Account, Region: a.Region, State: state})
}

func (f *fleet) Verify(ctx context.Context, a remediate.Action) (remediate.Check, error) {
	b, err := f.get(ctx, a.Account, a.Region)
	if err != nil {
		return remediate.Check{}, err
	}
	return b.Verify(ctx, a)
}

func (f *fleet) Undo(ctx context.Context, c remediate.Change) error {
	var before, after routed
	if len(c.Before) == 0 {
		return f.undoEverywhere(ctx, c)
	}
	if err := json.Unmarshal(c.Before, &before); err != nil {
		return remediate.MarkPermanent(fmt.Errorf("undo %s: the recorded state is not a fleet record: %w", c.Key, err))
	}
	if len(c.After) > 0 {
		json.Unmarshal(c.After, &after)
	}
	b, err := f.get(ctx, before.Account, before.Region)
	if err != nil {
		return err
	}
	inner := c
	inner.Before, inner.After = before.State, after.State
	return b.Undo(ctx, inner)
}

// undoEverywhere undoes a change whose state was never recorded (the
// process stopped between the call and the record): the backends find
// their change by its key, so asking each known account and region is
// safe, and only the one that made it changes anything.
func (f *fleet) undoEverywhere(ctx context.Context, c remediate.Change) error {
	var errs []error
	for _, a := range f.aws.List {
		for _, region := range f.regions {
			b, err := f.get(ctx, a.ID, region)
			if err == nil {
				err = b.Undo(ctx, c)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s/%s: %w", a.ID, region, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Maintain is the daemon's Blocker.Maintain: drift, restore and expiry.
func (r *remediation) Maintain(ctx context.Context, now time.Time) (remediate.Maintenance, error) {
	return r.engine.Maintain(ctx, now, func(b store.Block) bool { return r.stillActive(ctx, b, now) })
}

// stillActive reports whether a block's target is still being hit, from
// the VPC flow logs of its instance over the last day: a block is lifted
// only when telemetry shows the abuse has stopped. Without telemetry (a
// host nftables block, no flow log, AWS unreachable) it cannot tell, and
// keeps the block: the admins are told and may unblock by hand.
func (r *remediation) stillActive(ctx context.Context, b store.Block, now time.Time) bool {
	var a remediate.Action
	if err := json.Unmarshal(b.Action, &a); err != nil || a.InstanceID == "" {
		return true
	}
	cfg, err := r.aws.Config(ctx, a.Account, a.Region)
	if err != nil {
		return true
	}
	c := cloud.NewClientsFromConfig(cfg)
	inst, err := c.Resolve(ctx, a.InstanceID, netip.Addr{})
	if err != nil || !inst.Found {
		return true
	}
	var enis []string
	for _, e := range inst.ENIs {
		enis = append(enis, e.ID)
	}
	tel, err := c.FlowTelemetry(ctx, cloud.FlowQuery{LogGroup: r.flowLogGroup, ENIs: enis, Targets: []netip.Addr{a.Target.Addr()},
		From: now.Add(-24 * time.Hour), To: now, Now: now})
	if err != nil || !tel.Covered {
		return true
	}
	return len(tel.Flows) > 0
}
