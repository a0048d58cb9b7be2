package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/abuse-responder/abuse-responder/internal/awsconf"
	"github.com/abuse-responder/abuse-responder/internal/ssmrun"
	"github.com/abuse-responder/abuse-responder/remediate"
)

// Defaults of Options.
const (
	DefaultBinary  = "/usr/local/bin/abuse-responder"
	DefaultTimeout = 3 * time.Second
)

// execTimeout bounds the run on the instance: one connect timeout, at
// most MaxTimeout, plus the program's start.
const execTimeout = 30 * time.Second

// Options configures a Verifier.
type Options struct {
	// AWS are the accounts where instances may be asked, with the
	// endpoint and attempts of their clients; the SSM client of an
	// account and region is made on first use from its shared config.
	AWS *awsconf.Accounts
	// Binary is this program's path on the instances; DefaultBinary
	// when empty.
	Binary string
	// Timeout bounds the connect on the instance; DefaultTimeout when
	// zero, at most MaxTimeout.
	Timeout time.Duration
}

// Verifier is a remediate.Backend that passes everything to the backend
// it wraps, and adds to Verify a connect from the instance: when the
// read-back check holds for a NACL or security-group action of one TCP
// port to one address, the instance connects to that address and port
// through SSM. A connect that succeeds means the block does not hold
// whatever the read-back said; one that fails is recorded as such. A
// failure to run the test at all (SSM does not manage the instance, the
// role may not send commands) leaves the check as it was, with a note:
// the read-back is still the proof we had before. It is safe for
// concurrent use.
type Verifier struct {
	inner remediate.Backend
	opts  Options

	mu      sync.Mutex
	clients map[string]ssmrun.SSMAPI // by "account/region"
}

var _ remediate.Backend = (*Verifier)(nil)

// Wrap returns inner with Verify extended by the connect from the
// instance. It makes no call.
func Wrap(inner remediate.Backend, o Options) (*Verifier, error) {
	if o.Binary == "" {
		o.Binary = DefaultBinary
	}
	if !ssmrun.ValidBinary(o.Binary) {
		return nil, fmt.Errorf("probe: remote binary %q is not a plain absolute path", o.Binary)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Timeout < 0 || o.Timeout > MaxTimeout {
		return nil, fmt.Errorf("probe: timeout %s is not above 0 and at most %s", o.Timeout, MaxTimeout)
	}
	return &Verifier{inner: inner, opts: o, clients: map[string]ssmrun.SSMAPI{}}, nil
}

// Kinds is the wrapped backend's.
func (v *Verifier) Kinds() []remediate.Kind { return v.inner.Kinds() }

// Plan is the wrapped backend's.
func (v *Verifier) Plan(ctx context.Context, in remediate.Input) ([]remediate.Action, []remediate.Refusal, error) {
	return v.inner.Plan(ctx, in)
}

// Apply is the wrapped backend's.
func (v *Verifier) Apply(ctx context.Context, a remediate.Action, dryRun bool) (remediate.Change, error) {
	return v.inner.Apply(ctx, a, dryRun)
}

// Undo is the wrapped backend's.
func (v *Verifier) Undo(ctx context.Context, c remediate.Change) error {
	return v.inner.Undo(ctx, c)
}

// Verify is the wrapped backend's check, then, when it holds and a
// connect can show anything, the connect from a's instance; its outcome
// is appended to Detail: "; from the instance: connect to
// 203.0.113.5:22 failed (timeout after 3.0 s)".
func (v *Verifier) Verify(ctx context.Context, a remediate.Action) (remediate.Check, error) {
	chk, err := v.inner.Verify(ctx, a)
	if err != nil || !chk.Holds || !applies(a) || remediate.Reconciling(ctx) {
		// The periodic check reads the block back only: a command on the
		// instance every few minutes for every block would be noise.
		return chk, err
	}
	if !a.Target.IsSingleIP() {
		chk.Detail += fmt.Sprintf("; no connect test from the instance: the target %s is a range", a.Target)
		return chk, nil
	}
	target := netip.AddrPortFrom(a.Target.Addr(), a.Port)
	res, err := v.probe(ctx, a, target)
	switch {
	case err != nil:
		chk.Detail += "; no connect test from the instance: " + v.why(a, err)
	case res.Connected:
		chk.Holds = false
		chk.Detail += fmt.Sprintf("; from the instance: connect to %s connected in %s: the block does not hold", target, seconds(res.MS))
	default:
		chk.Detail += fmt.Sprintf("; from the instance: connect to %s failed (%s after %s)", target, strings.TrimPrefix(res.Error, "i/o "), seconds(res.MS))
	}
	return chk, nil
}

// applies reports whether a connect can test a: a NACL entry or a
// security group that blocks one TCP port, on an instance we can ask.
// A block of every protocol has no port to dial, udp cannot be shown by
// a connect, and a quarantine is checked by its groups alone.
func applies(a remediate.Action) bool {
	return (a.Kind == remediate.KindNACL || a.Kind == remediate.KindSecurityGroup) &&
		a.Protocol == "tcp" && a.Port != 0 && a.InstanceID != "" && a.Target.IsValid()
}

// probe runs `probe --json -` for target on a's instance and returns its
// one result.
func (v *Verifier) probe(ctx context.Context, a remediate.Action, target netip.AddrPort) (Result, error) {
	data, err := json.Marshal(RequestFor(v.opts.Timeout, target))
	if err != nil {
		return Result{}, fmt.Errorf("encode request: %w", err)
	}
	// The same check the instance makes: a request it would refuse is
	// not worth a command.
	if _, err := Parse(data); err != nil {
		return Result{}, err
	}
	api, err := v.client(ctx, a.Account, a.Region)
	if err != nil {
		return Result{}, err
	}
	opts := ssmrun.Options{ExecutionTimeout: execTimeout, Comment: "abuse-responder probe " + a.Key}
	stdout, err := opts.Run(ctx, api, a.InstanceID, data, v.opts.Binary, "probe", "--json", "-")
	if err != nil {
		return Result{}, err
	}
	var ans Answer
	dec := json.NewDecoder(bytes.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ans); err != nil {
		return Result{}, fmt.Errorf("the answer is not the JSON expected: %w (%q)", err, ssmrun.Clip(string(stdout), 200))
	}
	if len(ans.Results) != 1 || ans.Results[0].IP != target.Addr().String() || ans.Results[0].Port != int(target.Port()) {
		return Result{}, fmt.Errorf("the answer is not for %s: %q", target, ssmrun.Clip(string(stdout), 200))
	}
	return ans.Results[0], nil
}

// client returns the SSM client of account and region, made on first use.
func (v *Verifier) client(ctx context.Context, account, region string) (ssmrun.SSMAPI, error) {
	if _, err := v.opts.AWS.Check(account, region); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	key := account + "/" + region
	if c, ok := v.clients[key]; ok {
		return c, nil
	}
	cfg, err := v.opts.AWS.Config(ctx, account, region)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	c := ssm.NewFromConfig(cfg)
	v.clients[key] = c
	return c, nil
}

// why says in a few words why the connect test could not run, for the
// check's detail, which ends up in the summary and the reply.
func (v *Verifier) why(a remediate.Action, err error) string {
	var ce *ssmrun.CommandError
	switch {
	case ssmrun.IsNotManaged(err):
		return a.InstanceID + " is not managed by SSM, not running, or its agent is offline"
	case ssmrun.IsAccessDenied(err):
		return "SSM refused the command (the role needs ssm:SendCommand and ssm:GetCommandInvocation)"
	case errors.As(err, &ce) && ce.Status == "Failed" && (ce.ExitCode == 126 || ce.ExitCode == 127):
		return fmt.Sprintf("%s is missing or not executable on %s (exit %d)", v.opts.Binary, a.InstanceID, ce.ExitCode)
	case errors.As(err, &ce) && ce.Status == "Failed" && ce.ExitCode == 2:
		return fmt.Sprintf("%s on %s does not know `probe` (an older version?)", v.opts.Binary, a.InstanceID)
	}
	return ssmrun.Clip(err.Error(), 300)
}

// seconds is ms as "3.0 s".
func seconds(ms int64) string {
	return fmt.Sprintf("%.1f s", float64(ms)/1000)
}
