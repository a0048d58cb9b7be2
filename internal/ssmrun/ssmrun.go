// Package ssmrun runs this program on an EC2 instance through SSM Run
// Command (AWS-RunShellScript), for the analysis (`collect`) and for
// remediation (`nft apply|verify|undo`) alike.
//
// The command is always `echo <base64(stdin)> | base64 -d | <binary>
// <args…>`: stdin travels base64-encoded, so the shell on the instance
// never parses a byte of it, and the only other words are the binary's
// plain absolute path (from our config) and literal arguments chosen by
// the caller from a fixed list. Both are checked here, and the whole
// command once more against its expected shape, before anything is sent.
package ssmrun

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// SSMAPI is the part of *ssm.Client that Run calls.
type SSMAPI interface {
	SendCommand(context.Context, *ssm.SendCommandInput, ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	GetCommandInvocation(context.Context, *ssm.GetCommandInvocationInput, ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
}

// MaxStdinBytes bounds what Run sends on stdin: the command that carries
// it, base64-encoded, must stay well inside SSM's request limits.
const MaxStdinBytes = 32 << 10

// SSM Run Command limits and our defaults.
const (
	// OutputCap is how many characters of stdout SSM keeps inline (8,000
	// of stderr); more needs an S3 output bucket.
	OutputCap = 24000
	// deliveryTimeout is SendCommand's TimeoutSeconds: how long SSM may
	// wait for the agent to pick the command up (AWS's minimum is 30).
	deliveryTimeout = 60 * time.Second
	// DefaultExecutionTimeout bounds the run on the instance when
	// Options.ExecutionTimeout is zero.
	DefaultExecutionTimeout = 2 * time.Minute
	// Poll delays for GetCommandInvocation, doubling from the first to
	// the last, when Options leaves them zero.
	DefaultPollFirst = 250 * time.Millisecond
	DefaultPollMax   = 5 * time.Second
)

var (
	// binaryRE is the remote binary's path: the one word of the command
	// that is not encoded or a literal of ours, so it must be plain.
	binaryRE = regexp.MustCompile(`^/[A-Za-z0-9._/-]+$`)
	// argRE is one argument: a subcommand, a flag or "-".
	argRE = regexp.MustCompile(`^[a-z-]+$`)
	// commandRE is the whole command, checked before sending, so that a
	// bug in building it cannot put anything else in front of the shell.
	commandRE    = regexp.MustCompile(`^echo [A-Za-z0-9+/=]+ \| base64 -d \| /[A-Za-z0-9._/-]+( [a-z-]+)+$`)
	instanceIDRE = regexp.MustCompile(`^m?i-[A-Za-z0-9]{1,40}$`)
)

// ValidBinary reports whether path is a remote binary Run accepts: a
// plain absolute path of letters, digits and . _ / - only, since it is
// the one word of the command that is neither encoded nor a literal of
// ours. Callers check it early, so that a bad path is a config error.
func ValidBinary(path string) bool { return binaryRE.MatchString(path) }

// ErrOutputTruncated says the remote output reached SSM's inline cap, so
// the answer is cut short.
var ErrOutputTruncated = errors.New("output truncated at SSM's 24,000-character inline limit (an S3 output bucket would lift it; not supported yet)")

// CommandError is a command that reached the instance and did not succeed.
type CommandError struct {
	InstanceID, CommandID string
	Status                string // Failed, TimedOut or Cancelled
	StatusDetails         string
	ExitCode              int32
	Stderr                string // the first characters SSM kept
}

// Error names the command, the instance, the status, the exit code and
// the start of stderr.
func (e *CommandError) Error() string {
	msg := fmt.Sprintf("ssm command %s on %s: %s (%s, exit %d)", e.CommandID, e.InstanceID, e.Status, e.StatusDetails, e.ExitCode)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + Clip(s, 1000)
	}
	return msg
}

// IsNotManaged reports whether err, or an error it wraps, says the
// instance cannot take commands: not managed by SSM, not running, or its
// agent offline (SSM's InvalidInstanceId).
func IsNotManaged(err error) bool { return errorCode(err) == "InvalidInstanceId" }

// IsAccessDenied reports whether err, or an error it wraps, is SSM (or
// STS, for an assumed role) refusing the call for lack of permission.
func IsAccessDenied(err error) bool {
	switch errorCode(err) {
	case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation":
		return true
	}
	return false
}

// Options tunes Run; the zero value means the defaults.
type Options struct {
	// ExecutionTimeout bounds the run on the instance;
	// DefaultExecutionTimeout when zero.
	ExecutionTimeout time.Duration
	// Comment is SendCommand's comment, shown in the SSM console; it is
	// clipped to SSM's 100 characters. Empty: "abuse-responder <args>".
	Comment string
	// PollFirst and PollMax are the first and the longest delay between
	// GetCommandInvocation calls; the defaults when zero.
	PollFirst, PollMax time.Duration
}

// Run is Options{}.Run: the defaults.
func Run(ctx context.Context, api SSMAPI, instanceID string, stdin []byte, binary string, args ...string) ([]byte, error) {
	return Options{}.Run(ctx, api, instanceID, stdin, binary, args...)
}

// Run sends `echo <base64(stdin)> | base64 -d | binary args…` to the
// instance and returns its stdout once the command succeeded. The
// instance ID, binary and args are validated before any call (args are
// literal words of ours such as "collect", "--json", "-"). It waits until
// the command ends, its deadline passes, or ctx is done. A command that
// ran and failed is a *CommandError; stdout at SSM's cap is
// ErrOutputTruncated.
func (o Options) Run(ctx context.Context, api SSMAPI, instanceID string, stdin []byte, binary string, args ...string) ([]byte, error) {
	op := "ssm " + opName(args)
	if !instanceIDRE.MatchString(instanceID) {
		return nil, fmt.Errorf("%s: %q is not an instance ID", op, instanceID)
	}
	if !ValidBinary(binary) {
		return nil, fmt.Errorf("%s: remote binary %q is not a plain absolute path", op, binary)
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: no arguments for %s", op, binary)
	}
	for _, a := range args {
		if !argRE.MatchString(a) {
			return nil, fmt.Errorf("%s: argument %q is not a plain word of lower-case letters and -", op, a)
		}
	}
	if len(stdin) == 0 || len(stdin) > MaxStdinBytes {
		return nil, fmt.Errorf("%s on %s: stdin of %d bytes, want 1 to %d", op, instanceID, len(stdin), MaxStdinBytes)
	}
	command := "echo " + base64.StdEncoding.EncodeToString(stdin) + " | base64 -d | " + binary + " " + strings.Join(args, " ")
	if !commandRE.MatchString(command) {
		return nil, fmt.Errorf("%s on %s: refusing to send a command of unexpected shape", op, instanceID)
	}
	o = o.withDefaults(args)

	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout+o.ExecutionTimeout+30*time.Second)
	defer cancel()
	sent, err := api.SendCommand(ctx, &ssm.SendCommandInput{
		DocumentName: aws.String("AWS-RunShellScript"),
		InstanceIds:  []string{instanceID},
		Parameters: map[string][]string{
			"commands":         {command},
			"executionTimeout": {strconv.Itoa(int(o.ExecutionTimeout.Seconds()))},
		},
		TimeoutSeconds: aws.Int32(int32(deliveryTimeout.Seconds())),
		Comment:        aws.String(Clip(o.Comment, 100)),
	})
	switch {
	case IsNotManaged(err):
		return nil, fmt.Errorf("%s: %s is not managed by SSM, not running, or its agent is offline: %w", op, instanceID, err)
	case err != nil:
		return nil, fmt.Errorf("ssm send-command to %s: %w", instanceID, err)
	case sent.Command == nil || aws.ToString(sent.Command.CommandId) == "":
		return nil, fmt.Errorf("ssm send-command to %s: no command ID in the reply", instanceID)
	}
	return o.wait(ctx, api, instanceID, aws.ToString(sent.Command.CommandId))
}

// withDefaults fills the zero fields.
func (o Options) withDefaults(args []string) Options {
	if o.ExecutionTimeout <= 0 {
		o.ExecutionTimeout = DefaultExecutionTimeout
	}
	if o.PollFirst <= 0 {
		o.PollFirst = DefaultPollFirst
	}
	if o.PollMax <= 0 {
		o.PollMax = DefaultPollMax
	}
	if o.Comment == "" {
		o.Comment = "abuse-responder " + opName(args)
	}
	return o
}

// opName is the subcommand words of args ("collect", "nft apply"), for
// messages: the arguments before the first flag or "-".
func opName(args []string) string {
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		words = append(words, a)
	}
	if len(words) == 0 {
		return "command"
	}
	return strings.Join(words, " ")
}

// maxTransient bounds the polls in a row that get no answer from SSM (a
// network error, a reply cut short) before waiting gives up.
const maxTransient = 5

// wait polls the invocation until it ends. Right after SendCommand the
// invocation may not exist yet: that is retried, not an error.
func (o Options) wait(ctx context.Context, api SSMAPI, instanceID, commandID string) ([]byte, error) {
	delay := o.PollFirst
	transient := 0
	for {
		if err := sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("ssm command %s on %s: stopped waiting: %w", commandID, instanceID, err)
		}
		delay = min(delay*2, o.PollMax)
		inv, err := api.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{
			CommandId: aws.String(commandID), InstanceId: aws.String(instanceID),
		})
		if errorCode(err) == "InvocationDoesNotExist" {
			continue
		}
		if err != nil && errorCode(err) == "" && ctx.Err() == nil && transient < maxTransient {
			// No answer from SSM at all (a connection cut while the reply
			// was read): asking again is harmless, the command runs once.
			transient++
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ssm command %s on %s: %w", commandID, instanceID, err)
		}
		transient = 0
		switch inv.Status {
		case types.CommandInvocationStatusSuccess:
			out := aws.ToString(inv.StandardOutputContent)
			if utf8.RuneCountInString(out) >= OutputCap {
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

// Clip shortens s to at most n runes, marking the cut with "…".
func Clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// errorCode is the AWS error code in err's chain, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
