package analyze

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/analyze/cloud"
	"github.com/abuse-responder/abuse-responder/analyze/evidence"
	"github.com/abuse-responder/abuse-responder/analyze/host"
	"github.com/abuse-responder/abuse-responder/internal/awsconf"
)

// Account is one AWS account analyze may read; a RoleARN of "" uses the
// default credential chain.
type Account = awsconf.Account

// HostMode says where host evidence is collected.
type HostMode string

// The host modes.
const (
	// HostAuto collects unless the instance metadata service says this
	// machine is an instance other than the implicated ones: findings from
	// the wrong host would blame the wrong machine. Then, when SSM manages
	// the implicated instance, it collects there through SSM instead.
	HostAuto  HostMode = "auto"
	HostLocal HostMode = "local" // always collect here
	HostSSM   HostMode = "ssm"   // on the implicated instance, through SSM Run Command
	HostOff   HostMode = "off"   // never
)

// Config is what an Analyzer needs; cmd maps the config file onto it.
type Config struct {
	// Accounts empty means no AWS part: the analysis says so and goes on.
	Accounts     []Account
	Regions      []string // used when the notice names none
	EndpointURL  string   // "" for AWS; an emulator in tests and demos
	MaxAttempts  int      // AWS SDK attempts; 0 for its default
	FlowLogGroup string   // "" finds it with DescribeFlowLogs
	WindowMargin time.Duration

	HostMode   HostMode
	AccessLogs []string
	ModsecLogs []string
	WebRoots   []string
	ProcRoot   string   // "" for /proc
	CronPaths  []string // nil for the system's crontabs
	UnitDirs   []string // nil for the system's unit folders
	// RemoteBinary is this program's path on the instances, for SSM;
	// "" for DefaultRemoteBinary.
	RemoteBinary string

	// Identity returns this machine's instance ID, or "" when unknown.
	// Nil asks the instance metadata service.
	Identity func(ctx context.Context) string
	// Now is the clock; nil for time.Now.
	Now func() time.Time
	// Timeout bounds one analysis (default 2m): the daemon's case loop
	// waits for it, so a hung AWS call must not hold every case.
	Timeout time.Duration
}

// Analyzer runs the analysis of notices. It is safe for concurrent use.
type Analyzer struct {
	cfg Config
	log *slog.Logger
	// aws keeps the config of each account and region, so that its
	// assumed-role credentials serve every analysis.
	aws *awsconf.Accounts
}

// New returns an Analyzer.
func New(cfg Config, log *slog.Logger) *Analyzer {
	if cfg.WindowMargin <= 0 {
		cfg.WindowMargin = time.Hour
	}
	if cfg.HostMode == "" {
		cfg.HostMode = HostAuto
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Identity == nil {
		cfg.Identity = metadataInstanceID
	}
	return &Analyzer{cfg: cfg, log: log,
		aws: &awsconf.Accounts{List: cfg.Accounts, EndpointURL: cfg.EndpointURL, MaxAttempts: cfg.MaxAttempts}}
}

// Analyze gathers everything about n and decides. It does not fail: a part
// that cannot be had (AWS unreachable, a denied call, the wrong host) is
// named in Problems and the verdict is drawn from the rest.
func (an *Analyzer) Analyze(ctx context.Context, n abuse.Notice) Analysis {
	ctx, cancel := context.WithTimeout(ctx, an.cfg.Timeout)
	defer cancel()
	a := Analysis{
		CaseID:      n.CaseID,
		Targets:     nonNil(n.Targets),
		TargetHosts: nonNil(n.TargetHosts),
		Resources:   []cloud.Instance{},
		Telemetry:   Telemetry{FlowLogs: []cloud.Telemetry{}},
		Host:        Host{Findings: []host.Finding{}},
		Problems:    []string{},
	}
	ref := an.cfg.Now()
	if n.Date != nil {
		ref = *n.Date
	}
	a.Evidence = evidence.Parse(n.Evidence, ref)
	a.Window = window(n, a.Evidence, an.cfg.WindowMargin, ref)

	an.cloudPart(ctx, n, &a)
	an.hostPart(ctx, n, &a)

	a.Verdict, a.Why = decide(&a)
	a.Cause = findCause(a.Host.Findings, n.Type)
	if an.log != nil {
		// Missing parts are recorded in the analysis; the journal gets them
		// too, since they usually mean a config or permission to fix.
		for _, p := range a.Problems {
			an.log.Info("analysis part missing", "case", n.CaseID, "problem", p)
		}
	}
	return a
}

// window is the abuse time ± margin. Without an abuse time it spans the
// reporter's own line times, and failing those the day before the mail.
func window(n abuse.Notice, ev evidence.Result, margin time.Duration, ref time.Time) Window {
	if n.AbuseTime != nil {
		return Window{From: n.AbuseTime.Add(-margin).UTC(), To: n.AbuseTime.Add(margin).UTC()}
	}
	var first, last time.Time
	for _, e := range ev.Events {
		if e.Time == nil {
			continue
		}
		if first.IsZero() || e.Time.Before(first) {
			first = *e.Time
		}
		if e.Time.After(last) {
			last = *e.Time
		}
	}
	if first.IsZero() {
		return Window{From: ref.Add(-abuse.ReplyWindow - margin).UTC(), To: ref.Add(margin).UTC()}
	}
	return Window{From: first.Add(-margin).UTC(), To: last.Add(margin).UTC()}
}

// cloudPart resolves the resources and reads the flow logs, account by
// account and region by region.
func (an *Analyzer) cloudPart(ctx context.Context, n abuse.Notice, a *Analysis) {
	if len(an.cfg.Accounts) == 0 {
		a.Problems = append(a.Problems, "AWS not consulted: no [[aws.accounts]] in the config")
		return
	}
	if _, ok := an.aws.Account(n.AccountID); !ok {
		a.Problems = append(a.Problems, fmt.Sprintf("AWS not consulted: account %q is not in [[aws.accounts]]", n.AccountID))
		return
	}
	clients := map[string]*cloud.Clients{}
	get := func(region string) (*cloud.Clients, error) {
		if c, ok := clients[region]; ok {
			return c, nil
		}
		cfg, err := an.aws.Config(ctx, n.AccountID, region)
		if err != nil {
			return nil, err
		}
		c := cloud.NewClientsFromConfig(cfg)
		clients[region] = c
		return c, nil
	}
	enis := map[string][]string{} // region → ENIs of the instances found there
	for _, r := range n.Resources {
		inst, err := an.resolve(ctx, r, n.Regions, get)
		if err != nil {
			a.Problems = append(a.Problems, fmt.Sprintf("resolve %s: %v", describe(r), err))
			continue
		}
		a.Resources = append(a.Resources, inst)
		for _, e := range inst.ENIs {
			enis[inst.Region] = append(enis[inst.Region], e.ID)
		}
	}
	var targets []netip.Addr
	for _, t := range a.Targets {
		targets = append(targets, t.IP)
	}
	for _, region := range sortedKeys(enis) {
		c, err := get(region)
		if err != nil {
			a.Problems = append(a.Problems, fmt.Sprintf("flow logs in %s: %v", region, err))
			continue
		}
		tel, err := c.FlowTelemetry(ctx, cloud.FlowQuery{LogGroup: an.cfg.FlowLogGroup, ENIs: enis[region],
			Targets: targets, From: a.Window.From, To: a.Window.To, Now: an.cfg.Now()})
		if err != nil {
			a.Problems = append(a.Problems, fmt.Sprintf("flow logs in %s: %v", region, err))
			continue
		}
		a.Telemetry.FlowLogs = append(a.Telemetry.FlowLogs, tel)
	}
}

// resolve looks a resource up in its region; with none given, in the
// notice's regions, then the configured ones, until one knows it.
func (an *Analyzer) resolve(ctx context.Context, r abuse.Resource, noticeRegions []string,
	get func(string) (*cloud.Clients, error)) (cloud.Instance, error) {
	regions := []string{r.Region}
	if r.Region == "" {
		regions = append(slices.Clone(noticeRegions), an.cfg.Regions...)
	}
	ip, _ := netip.ParseAddr(r.PublicIP)
	var last cloud.Instance
	var lastErr error
	for _, region := range dedupe(regions) {
		c, err := get(region)
		if err != nil {
			lastErr = err
			continue
		}
		inst, err := c.Resolve(ctx, r.InstanceID, ip)
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", region, err)
			continue
		}
		if inst.Found {
			return inst, nil
		}
		last, lastErr = inst, nil
	}
	if lastErr != nil {
		return cloud.Instance{}, lastErr
	}
	if last.Query == "" {
		return cloud.Instance{}, fmt.Errorf("no region to look in: the notice names none and [aws] regions is empty")
	}
	return last, nil
}

func describe(r abuse.Resource) string {
	if r.InstanceID != "" {
		return r.InstanceID
	}
	return r.PublicIP
}

func dedupe(list []string) []string {
	var out []string
	for _, s := range list {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
