package nftssm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/remediate/nft"
)

// The operations of `abuse-responder nft OP -`, the words sent through
// SSM after "nft".
const (
	OpApply  = "apply"
	OpVerify = "verify"
	OpUndo   = "undo"
)

// MaxRequestBytes bounds a request: the instance reads stdin no further.
const MaxRequestBytes = 16 << 10

// Bounds on an action's calls: the host backend reads its timeout from
// them, nothing else; a plan's action has at most twenty.
const (
	maxCalls    = 32
	maxCallLen  = 512
	maxKeyBytes = 128 // an nft comment, which is what the key becomes
)

// keyRE is an action key: case ID, kind, instance, CIDR, protocol, port.
var keyRE = regexp.MustCompile(`^[A-Za-z0-9._:/-]{1,128}$`)

// Request is what `abuse-responder nft apply|verify|undo -` reads on
// stdin, one JSON object: Action (and DryRun, for apply) for apply and
// verify, Change for undo.
type Request struct {
	Action *remediate.Action `json:"action,omitempty"`
	DryRun bool              `json:"dry_run,omitempty"`
	Change *remediate.Change `json:"change,omitempty"`
}

// ParseRequest decodes one request for op strictly (unknown fields,
// trailing data and oversize input are errors) and validates it: the
// instance checks again what the daemon sent, since whatever reaches this
// command runs as root.
func ParseRequest(op string, data []byte) (Request, error) {
	var r Request
	if len(data) > MaxRequestBytes {
		return r, fmt.Errorf("request: longer than %d bytes", MaxRequestBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return r, errors.New("request: empty; want one JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, fmt.Errorf("request: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Request{}, errors.New("request: more than one JSON value")
	}
	if err := r.Validate(op); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Validate checks that r fits op: an nftables action on one address that
// is never protected for apply and verify, an nftables change of our own
// table for undo.
func (r Request) Validate(op string) error {
	switch op {
	case OpApply, OpVerify:
		if r.Action == nil || r.Change != nil {
			return fmt.Errorf("request: %s takes an action and no change", op)
		}
		if r.DryRun && op == OpVerify {
			return errors.New("request: verify takes no dry_run")
		}
		return validAction(*r.Action)
	case OpUndo:
		if r.Change == nil || r.Action != nil || r.DryRun {
			return errors.New("request: undo takes a change and nothing else")
		}
		return validChange(*r.Change)
	}
	return fmt.Errorf("request: operation %q is not apply, verify or undo", op)
}

func validAction(a remediate.Action) error {
	if a.Kind != remediate.KindNftables {
		return fmt.Errorf("request: action kind %q is not %q", a.Kind, remediate.KindNftables)
	}
	if !keyRE.MatchString(a.Key) {
		return fmt.Errorf("request: action key %q: want 1 to %d letters, digits and . _ : / -", a.Key, maxKeyBytes)
	}
	if !a.Target.IsValid() || !a.Target.IsSingleIP() {
		return fmt.Errorf("request: target %s is not one address (a /32 or /128)", a.Target)
	}
	// The daemon checked this before planning; a request that reaches
	// the instance otherwise did not come from its plan.
	if why, bad := remediate.PrefixProtected(a.Target, nil); bad {
		return fmt.Errorf("request: target refused: %s", why)
	}
	switch a.Protocol {
	case "tcp", "udp", "":
	default:
		return fmt.Errorf("request: protocol %q is not tcp, udp or \"\"", a.Protocol)
	}
	if len(a.Calls) > maxCalls {
		return fmt.Errorf("request: %d calls, at most %d", len(a.Calls), maxCalls)
	}
	for i, c := range a.Calls {
		if len(c) > maxCallLen {
			return fmt.Errorf("request: calls[%d] is longer than %d bytes", i, maxCallLen)
		}
	}
	return nil
}

func validChange(c remediate.Change) error {
	if c.Kind != remediate.KindNftables {
		return fmt.Errorf("request: change kind %q is not %q", c.Kind, remediate.KindNftables)
	}
	if !keyRE.MatchString(c.Key) {
		return fmt.Errorf("request: change key %q: want 1 to %d letters, digits and . _ : / -", c.Key, maxKeyBytes)
	}
	// The host backend undoes in the table its record names; only ours
	// may be named, so that a request cannot reach another table.
	for _, raw := range []json.RawMessage{c.Before, c.After} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var rec struct {
			Table string `json:"table"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("request: change state: %w", err)
		}
		if rec.Table != "" && rec.Table != nft.DefaultTable {
			return fmt.Errorf("request: change state names table %q, not %q", rec.Table, nft.DefaultTable)
		}
	}
	return nil
}
