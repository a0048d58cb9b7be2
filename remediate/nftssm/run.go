package nftssm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/internal/ssmrun"
	"github.com/abuse-responder/abuse-responder/remediate"
)

// execTimeout bounds one nft run on the instance: a batch and a connect
// check take well under a second; the rest is waiting for the lock.
const execTimeout = time.Minute

// placed is a Change's state as this package records it: where the
// change was made, and the host backend's own state.
type placed struct {
	Account  string          `json:"account"`
	Region   string          `json:"region"`
	Instance string          `json:"instance"`
	State    json.RawMessage `json:"state"`
}

// Apply runs `nft apply -` with a on a's instance, and returns the
// host backend's Change with its state wrapped in where it was made.
func (b *Backend) Apply(ctx context.Context, a remediate.Action, dryRun bool) (remediate.Change, error) {
	ch := remediate.Change{Key: a.Key, Kind: remediate.KindNftables}
	if err := checkAction(a); err != nil {
		return ch, err
	}
	var got remediate.Change
	if err := b.call(ctx, a.Account, a.Region, a.InstanceID, OpApply, Request{Action: &a, DryRun: dryRun}, &got); err != nil {
		return ch, err
	}
	if got.Key != a.Key {
		return ch, remediate.MarkPermanent(fmt.Errorf("nftssm: apply %s on %s: the answer is for %q", a.Key, a.InstanceID, got.Key))
	}
	var err error
	if got.Before, err = wrap(a, got.Before); err != nil {
		return ch, err
	}
	if got.After, err = wrap(a, got.After); err != nil {
		return ch, err
	}
	got.Kind = remediate.KindNftables
	return got, nil
}

// Verify runs `nft verify -` with a on a's instance: our table read back
// there, and a connect from the instance to the target refused at once.
func (b *Backend) Verify(ctx context.Context, a remediate.Action) (remediate.Check, error) {
	chk := remediate.Check{Key: a.Key}
	if err := checkAction(a); err != nil {
		return chk, err
	}
	var got remediate.Check
	if err := b.call(ctx, a.Account, a.Region, a.InstanceID, OpVerify, Request{Action: &a}, &got); err != nil {
		return chk, err
	}
	if got.Key != a.Key {
		return chk, remediate.MarkPermanent(fmt.Errorf("nftssm: verify %s on %s: the answer is for %q", a.Key, a.InstanceID, got.Key))
	}
	got.Detail = "on " + a.InstanceID + ": " + got.Detail
	return got, nil
}

// Undo runs `nft undo -` on the instance c was made on, which removes
// the elements carrying c's key. Without a recorded state (the process
// stopped between Apply and its record), the instance is the one in the
// key and every configured account and region is asked: only where it
// runs does anything change.
func (b *Backend) Undo(ctx context.Context, c remediate.Change) error {
	if c.Kind != remediate.KindNftables {
		return remediate.MarkPermanent(fmt.Errorf("nftssm: undo %s: kind %q is not %q", c.Key, c.Kind, remediate.KindNftables))
	}
	if len(c.Before) == 0 && len(c.After) == 0 {
		return b.undoEverywhere(ctx, c)
	}
	var before, after placed
	for _, x := range []struct {
		raw json.RawMessage
		to  *placed
	}{{c.Before, &before}, {c.After, &after}} {
		if len(x.raw) == 0 {
			continue
		}
		if err := json.Unmarshal(x.raw, x.to); err != nil {
			return remediate.MarkPermanent(fmt.Errorf("nftssm: undo %s: the recorded state is not an nftssm record: %w", c.Key, err))
		}
	}
	where := before
	if where.Instance == "" {
		where = after
	}
	if !instanceIDRE.MatchString(where.Instance) {
		return remediate.MarkPermanent(fmt.Errorf("nftssm: undo %s: the recorded state names no instance", c.Key))
	}
	inner := remediate.Change{Key: c.Key, Kind: c.Kind, Made: c.Made, Before: before.State, After: after.State, At: c.At}
	return b.call(ctx, where.Account, where.Region, where.Instance, OpUndo, Request{Change: &inner}, nil)
}

// undoEverywhere is Undo without a recorded state.
func (b *Backend) undoEverywhere(ctx context.Context, c remediate.Change) error {
	id := instanceOfKey(c.Key)
	if id == "" {
		return remediate.MarkPermanent(fmt.Errorf("nftssm: undo %s: no recorded state and no instance in the key", c.Key))
	}
	inner := remediate.Change{Key: c.Key, Kind: c.Kind}
	var errs []error
	for _, a := range b.opts.AWS.List {
		for _, region := range b.opts.Regions {
			err := b.call(ctx, a.ID, region, id, OpUndo, Request{Change: &inner}, nil)
			if err == nil {
				return nil
			}
			if !ssmrun.IsNotManaged(err) {
				errs = append(errs, fmt.Errorf("%s/%s: %w", a.ID, region, err))
			}
		}
	}
	if len(errs) == 0 {
		return remediate.MarkPermanent(fmt.Errorf("nftssm: undo %s: instance %s takes no commands in any configured account and region", c.Key, id))
	}
	return errors.Join(errs...)
}

// instanceOfKey is the instance in "<case>:nftables:<instance>:<cidr>:…".
func instanceOfKey(key string) string {
	i := strings.LastIndex(key, ":nftables:")
	if i < 0 {
		return ""
	}
	rest := key[i+len(":nftables:"):]
	id, _, _ := strings.Cut(rest, ":")
	if !instanceIDRE.MatchString(id) {
		return ""
	}
	return id
}

// checkAction refuses an action this backend did not plan.
func checkAction(a remediate.Action) error {
	if a.Kind != remediate.KindNftables {
		return remediate.MarkPermanent(fmt.Errorf("nftssm: %s: kind %q is not %q", a.Key, a.Kind, remediate.KindNftables))
	}
	if !instanceIDRE.MatchString(a.InstanceID) {
		return remediate.MarkPermanent(fmt.Errorf("nftssm: %s: %q is not an instance ID", a.Key, a.InstanceID))
	}
	return nil
}

// call sends `nft op -` with req to the instance and decodes its one
// JSON line into out (nil: the answer is not read).
func (b *Backend) call(ctx context.Context, account, region, instance, op string, req Request, out any) error {
	if err := req.Validate(op); err != nil {
		return remediate.MarkPermanent(fmt.Errorf("nftssm: %s on %s: %w", op, instance, err))
	}
	c, err := b.get(ctx, account, region)
	if err != nil {
		return err
	}
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("nftssm: %s: encode request: %w", op, err)
	}
	key := ""
	if req.Action != nil {
		key = req.Action.Key
	} else if req.Change != nil {
		key = req.Change.Key
	}
	opts := ssmrun.Options{ExecutionTimeout: execTimeout, Comment: "abuse-responder nft " + op + " " + key}
	stdout, err := opts.Run(ctx, c.ssm, instance, data, b.opts.Binary, "nft", op, "-")
	if err != nil {
		return classify(fmt.Errorf("nftssm: %s on %s: %w", op, instance, err))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout), out); err != nil {
		return remediate.MarkPermanent(fmt.Errorf("nftssm: %s on %s: the answer is not the JSON expected: %w (%q)", op, instance, err, ssmrun.Clip(string(stdout), 200)))
	}
	return nil
}

// wrap records where a's change was made around the host backend's state.
func wrap(a remediate.Action, state json.RawMessage) (json.RawMessage, error) {
	raw, err := json.Marshal(placed{Account: a.Account, Region: a.Region, Instance: a.InstanceID, State: state})
	if err != nil {
		return nil, fmt.Errorf("nftssm: encode state: %w", err)
	}
	return raw, nil
}
