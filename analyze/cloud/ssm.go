package cloud

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
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
	if len(q.Targets) > maxQueryTargets || len(q.TargetHosts) > maxQueryHosts {
		return fmt.Errorf("query: more than %d targets or %d target hosts", maxQueryTargets, maxQueryHosts)
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

// SSM Run Command limits. SSM keeps the first 24,000 characters of
// stdout inline (8,000 of stderr); more needs an S3 output bucket.
const (
	ssmOutputCap = 24000
	// deliveryTimeout is SendCommand's TimeoutSeconds: how long SSM may
	// wait for the agent to pick the command up (AWS's minimum is 30).
	deliveryTimeout = 60 * time.Second
	// executionTimeout bounds the collect run on the instance; the same as
	// an analysis's default timeout, so that a run does not long outlive
	// the analysis that waits for it.
	executionTimeout = 2 * time.Minute
)

// Poll delays for GetCommandInvocation: doubling from pollFirst up to
// pollMax. Variables so that tests in this package can shorten them.
var (
	pollFirst = 250 * time.Millisecond
	pollMax   = 5 * time.Second
)

var (
	// binaryRE is the remote binary's path: it is the one part of the
	// command not encoded, so it must be plain (and comes from our config).
	binaryRE = regexp.MustCompile(`^/[A-Za-z0-9._/-]+$`)
	// commandRE is the whole command: checked before sending, so a bug in
	// building it cannot put anything else in front of the shell.
	commandRE    = regexp.MustCompile(`^echo [A-Za-z0-9+/=]+ \| base64 -d \| /[A-Za-z0-9._/-]+ collect --json --query -$`)
	instanceIDRE = regexp.MustCompile(`^m?i-[A-Za-z0-9]{1,40}$`)
)

// ErrOutputTruncated says the remote output reached SSM's inline cap, so
// the JSON is cut short.
var ErrOutputTruncated = errors.New("output truncated at SSM's 24,000-character inline limit (an S3 output bucket would lift it; not supported yet)")

// CommandError is a command that reached the instance and did not succeed.
type CommandError struct {
	InstanceID, CommandID string
	Status                string // Failed, TimedOut or Cancelled
	StatusDetails         string
	ExitCode              int32
	Stderr                string // the first characters SSM kept
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("ssm command %s on %s: %s (%s, exit %d)", e.CommandID, e.InstanceID, e.Status, e.StatusDetails, e.ExitCode)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + clip(s, 1000)
	}
	return msg
}

// IsNotManaged reports whether err, or an error it wraps, says the
// instance cannot take commands: not managed by SSM, not running, or its
// agent offline (SSM's InvalidInstanceId).
func IsNotManaged(err error) bool { return errorCode(err) == "InvalidInstanceId" }

// RunCollect runs `binary collect --json --query -` on the instance with
// query on stdin, through SSM Run Command (AWS-RunShellScript), and
// returns its stdout. The query is validated and re-encoded first, and
// travels base64-encoded: the only other text in the command is binary,
// which must be a plain absolute path. It waits until the command ends
// or ctx is done.
func (c *Clients) RunCollect(ctx context.Context, instanceID string, query []byte, binary string) ([]byte, error) {
	if !instanceIDRE.MatchString(instanceID) {
		return nil, fmt.Errorf("ssm collect: %q is not an instance ID", instanceID)
	}
	if !binaryRE.MatchString(binary) {
		return nil, fmt.Errorf("ssm collect: remote binary %q is not a plain absolute path", binary)
	}
	q, err := ParseCollectQuery(query)
	if err != nil {
		return nil, fmt.Errorf("ssm collect on %s: %w", instanceID, err)
	}
	// Re-encoding sends only the fields validated above.
	clean, err := json.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("ssm collect on %s: encode query: %w", instanceID, err)
	}
	command := "echo " + base64.StdEncoding.EncodeToString(clean) + " | base64 -d | " + binary + " collect --json --query -"
	if !commandRE.MatchString(command) {
		return nil, fmt.Errorf("ssm collect on %s: refusing to send a command of unexpected shape", instanceID)
	}

	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout+executionTimeout+30*time.Second)
	defer cancel()
	sent, err := c.SSM.SendCommand(ctx, &ssm.SendCommandInput{
		DocumentName: aws.String("AWS-RunShellScript"),
		InstanceIds:  []string{instanceID},
		Parameters: map[string][]string{
			"commands":         {command},
			"executionTimeout": {strconv.Itoa(int(executionTimeout.Seconds()))},
		},
		TimeoutSeconds: aws.Int32(int32(deliveryTimeout.Seconds())),
		Comment:        aws.String(clip("abuse-responder collect "+q.CaseID, 100)),
	})
	switch {
	case IsNotManaged(err):
		return nil, fmt.Errorf("ssm collect: %s is not managed by SSM, not running, or its agent is offline: %w", instanceID, err)
	case err != nil:
		return nil, fmt.Errorf("ssm send-command to %s: %w", instanceID, err)
	case sent.Command == nil || aws.ToString(sent.Command.CommandId) == "":
		return nil, fmt.Errorf("ssm send-command to %s: no command ID in the reply", instanceID)
	}
	return c.waitCommand(ctx, instanceID, aws.ToString(sent.Command.CommandId))
}

// waitCommand polls the invocation until it ends. Right after SendCommand
// the invocation may not exist yet: that is retried, not an error.
func (c *Clients) waitCommand(ctx context.Context, instanceID, commandID string) ([]byte, error) {
	delay := pollFirst
	for {
		if err := sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("ssm command %s on %s: stopped waiting: %w", commandID, instanceID, err)
		}
		delay = min(delay*2, pollMax)
		inv, err := c.SSM.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{
			CommandId: aws.String(commandID), InstanceId: aws.String(instanceID),
		})
		if errorCode(err) == "InvocationDoesNotExist" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ssm command %s on %s: %w", commandID, instanceID, err)
		}
		switch inv.Status {
		case types.CommandInvocationStatusSuccess:
			out := aws.ToString(inv.StandardOutputContent)
			if utf8.RuneCountInString(out) >= ssmOutputCap {
				return nil, fmt.Errorf("ssm command %s on %s: %w", commandID, instanceID, ErrOutputTruncated)
			}
			return []byte(out), nil
		case types.CommandInvocationStatusFailed, types.CommandInvocationStatusTimedOut, types.CommandInvocationStatusCancelled:
			return nil, &CommandError{InstanceID: instanceID, CommandID: commandID, Status: string(inv.Status),
				StatusDetails: aws.ToString(inv.StatusDetails), ExitCode: inv.ResponseCode,
				Stderr: aws.ToString(inv.StandardErrorContent)}
		}
		// Pending, InProgress, Delayed, Cancelling: not over yet.
	}
}

// sleep waits d, or returns ctx's error when it is done first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// clip shortens s to at most n runes.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
