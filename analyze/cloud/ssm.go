package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/internal/ssmrun"
)

// CollectQuery is what `abuse-responder collect --json --query -` reads on
// stdin: the case's window and targets, and nothing else from the report.
// RunCollect sends it to the implicated instance base64-encoded, so that
// the shell there never parses a byte of it.
type CollectQuery struct {
	CaseID      string         `json:"case_id"`
	From        time.Time      `json:"from"`
	To          time.Time      `json:"to"`
	Targets     []abuse.Target `json:"targets"`
	TargetHosts []string       `json:"target_hosts"`
	// OwnPorts are ports of ours the report says were reached (an open
	// proxy, an exposed service); OwnPortsGuessed marks common proxy ports
	// looked at when the report names none.
	OwnPorts        []uint16 `json:"own_ports,omitempty"`
	OwnPortsGuessed bool     `json:"own_ports_guessed,omitempty"`
}

// MaxCollectQueryBytes bounds a query: stdin is read no further, and the
// command that carries it must stay well inside SSM's request limits.
const MaxCollectQueryBytes = 32 << 10

// Bounds on a query's lists; a notice names a handful of targets.
const (
	maxQueryTargets = 1024
	maxQueryHosts   = 256
)

var (
	// hostNameRE is a DNS name as a report may give it, and nothing a
	// shell or a glob would read as syntax.
	hostNameRE = regexp.MustCompile(`^[A-Za-z0-9.-]{1,253}$`)
	caseIDRE   = regexp.MustCompile(`^[A-Za-z0-9._:-]{0,100}$`)
)

// ParseCollectQuery decodes one query strictly (unknown fields, trailing
// data and oversize input are errors) and validates it.
func ParseCollectQuery(data []byte) (CollectQuery, error) {
	var q CollectQuery
	if len(data) > MaxCollectQueryBytes {
		return q, fmt.Errorf("query: longer than %d bytes", MaxCollectQueryBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return q, fmt.Errorf("query: empty; want one JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return CollectQuery{}, fmt.Errorf("query: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return CollectQuery{}, fmt.Errorf("query: more than one JSON value")
	}
	if err := q.Validate(); err != nil {
		return CollectQuery{}, err
	}
	return q, nil
}

// Validate checks every field: the window is set and ordered, each target
// is an address with a known protocol, each host name is letters, digits,
// dots and hyphens only.
func (q CollectQuery) Validate() error {
	if !caseIDRE.MatchString(q.CaseID) {
		return fmt.Errorf("query: case_id %q is not a case ID", q.CaseID)
	}
	if q.From.IsZero() || q.To.IsZero() {
		return fmt.Errorf("query: from and to are required (RFC 3339 times)")
	}
	if q.To.Before(q.From) {
		return fmt.Errorf("query: to %s is before from %s", q.To.Format(time.RFC3339), q.From.Format(time.RFC3339))
	}
	if len(q.Targets) > maxQueryTargets || len(q.TargetHosts) > maxQueryHosts || len(q.OwnPorts) > maxQueryTargets {
		return fmt.Errorf("query: more than %d targets, %d target hosts or %d own ports", maxQueryTargets, maxQueryHosts, maxQueryTargets)
	}
	for i, p := range q.OwnPorts {
		if p == 0 {
			return fmt.Errorf("query: own_ports[%d]: port 0", i)
		}
	}
	for i, t := range q.Targets {
		if !t.IP.IsValid() {
			return fmt.Errorf("query: targets[%d]: ip is missing", i)
		}
		switch t.Protocol {
		case "", "tcp", "udp", "icmp":
		default:
			return fmt.Errorf("query: targets[%d]: protocol %q is not tcp, udp, icmp or \"\"", i, t.Protocol)
		}
	}
	for i, h := range q.TargetHosts {
		if !hostNameRE.MatchString(h) {
			return fmt.Errorf("query: target_hosts[%d]: %q is not a host name", i, h)
		}
	}
	return nil
}

// collectTimeout bounds the collect run on the instance: the same as an
// analysis's default timeout, so that a run does not long outlive the
// analysis that waits for it.
const collectTimeout = 2 * time.Minute

// Poll delays for GetCommandInvocation: doubling from pollFirst up to
// pollMax. Variables so that tests in this package can shorten them.
var (
	pollFirst = ssmrun.DefaultPollFirst
	pollMax   = ssmrun.DefaultPollMax
)

// ErrOutputTruncated says the remote output reached SSM's inline cap, so
// the JSON is cut short.
var ErrOutputTruncated = ssmrun.ErrOutputTruncated

// CommandError is a command that reached the instance and did not succeed.
type CommandError = ssmrun.CommandError

// IsNotManaged reports whether err, or an error it wraps, says the
// instance cannot take commands: not managed by SSM, not running, or its
// agent offline (SSM's InvalidInstanceId).
func IsNotManaged(err error) bool { return ssmrun.IsNotManaged(err) }

// RunCollect runs `binary collect --json --query -` on the instance with
// query on stdin, through SSM Run Command (AWS-RunShellScript), and
// returns its stdout. The query is validated and re-encoded first, and
// travels base64-encoded: the only other text in the command is binary,
// which must be a plain absolute path. It waits until the command ends
// or ctx is done.
func (c *Clients) RunCollect(ctx context.Context, instanceID string, query []byte, binary string) ([]byte, error) {
	q, err := ParseCollectQuery(query)
	if err != nil {
		return nil, fmt.Errorf("ssm collect on %s: %w", instanceID, err)
	}
	// Re-encoding sends only the fields validated above.
	clean, err := json.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("ssm collect on %s: encode query: %w", instanceID, err)
	}
	opts := ssmrun.Options{ExecutionTimeout: collectTimeout, Comment: "abuse-responder collect " + q.CaseID,
		PollFirst: pollFirst, PollMax: pollMax}
	return opts.Run(ctx, c.SSM, instanceID, clean, binary, "collect", "--json", "--query", "-")
}
