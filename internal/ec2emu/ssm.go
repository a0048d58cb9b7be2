package ec2emu

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"
)

// SSM Run Command in the fake. SendCommand records the command and starts
// the test's runner for each instance; GetCommandInvocation answers as SSM
// does soon after a send: InvocationDoesNotExist on the first poll,
// InProgress on the second, then the result once the runner returned.

// CommandResult is what a command did on an instance.
type CommandResult struct {
	Stdout, Stderr string
	// Status is "Success", "Failed", "TimedOut" or "Cancelled".
	Status string
	// ResponseCode is the exit status; 0 means 0 for Success and 1 for
	// Failed.
	ResponseCode int
}

// SentCommand is one SendCommand the fake accepted.
type SentCommand struct {
	CommandID      string
	DocumentName   string
	InstanceIDs    []string
	Parameters     map[string][]string
	Commands       []string // Parameters["commands"]
	TimeoutSeconds int32    // 0 when not given
	Comment        string
}

// ssmState is the fake's Run Command state; guarded by EC2Fake.mu.
type ssmState struct {
	runner func(instanceID string, commands []string) CommandResult
	sent   []SentCommand
	inv    map[string]*invocation // by command ID + "/" + instance ID
}

type invocation struct {
	document string
	polls    int
	done     bool
	result   CommandResult
}

// SSM's inline output caps.
const (
	ssmStdoutCap = 24000
	ssmStderrCap = 8000
)

// SetCommandRunner decides what an instance does with a command: run gets
// the instance and the commands parameter, and returns stdout and the
// status ("Success", "Failed", "TimedOut", "Cancelled"). Without a runner
// every command succeeds with no output, as on moto.
func (f *EC2Fake) SetCommandRunner(run func(instanceID string, commands []string) (stdout string, status string)) {
	f.SetCommandRunnerResult(func(id string, cmds []string) CommandResult {
		out, status := run(id, cmds)
		return CommandResult{Stdout: out, Status: status}
	})
}

// SetCommandRunnerResult is SetCommandRunner with the whole result:
// stderr and the exit status too.
func (f *EC2Fake) SetCommandRunnerResult(run func(instanceID string, commands []string) CommandResult) {
	f.locked(func() { f.ssm.runner = run })
}

// SentCommands lists the commands SendCommand accepted, in order.
func (f *EC2Fake) SentCommands() []SentCommand {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ssm.sent)
}

// sendCommand accepts a command for SSM-managed instances (SetSSMManaged)
// and runs the runner for each in its own goroutine, since the runner may
// take time or call the fake, and f.mu is held here.
func (f *EC2Fake) sendCommand(c Call) (any, error) {
	var in struct {
		DocumentName   string
		InstanceIds    []string
		Parameters     map[string][]string
		TimeoutSeconds *int32
		Comment        string
	}
	if err := json.Unmarshal(c.Body, &in); err != nil {
		return nil, errorf(400, "SerializationException", "%v", err)
	}
	switch {
	case in.DocumentName == "":
		return nil, errorf(400, "ValidationException", "DocumentName is required")
	case len(in.InstanceIds) == 0:
		return nil, errorf(400, "ValidationException", "the fake needs InstanceIds (Targets are not supported)")
	case in.TimeoutSeconds != nil && (*in.TimeoutSeconds < 30 || *in.TimeoutSeconds > 2592000):
		return nil, errorf(400, "ValidationException", "TimeoutSeconds must be between 30 and 2592000")
	case len(in.Comment) > 100:
		return nil, errorf(400, "ValidationException", "Comment is longer than 100 characters")
	}
	for _, id := range in.InstanceIds {
		if !f.st.ssmManaged[id] {
			return nil, errorf(400, "InvalidInstanceId", "Instances [[%s]] not in a valid state for account %s", id, AccountID)
		}
	}
	sent := SentCommand{
		CommandID: "cmd-" + strconv.Itoa(len(f.ssm.sent)+1), DocumentName: in.DocumentName,
		InstanceIDs: in.InstanceIds, Parameters: in.Parameters, Commands: in.Parameters["commands"], Comment: in.Comment,
	}
	if in.TimeoutSeconds != nil {
		sent.TimeoutSeconds = *in.TimeoutSeconds
	}
	f.ssm.sent = append(f.ssm.sent, sent)
	if f.ssm.inv == nil {
		f.ssm.inv = map[string]*invocation{}
	}
	for _, id := range in.InstanceIds {
		inv := &invocation{document: in.DocumentName}
		f.ssm.inv[sent.CommandID+"/"+id] = inv
		go f.run(f.ssm.runner, inv, id, slices.Clone(sent.Commands))
	}
	return map[string]any{"Command": map[string]any{
		"CommandId": sent.CommandID, "DocumentName": sent.DocumentName, "InstanceIds": sent.InstanceIDs,
		"Parameters": maps.Clone(sent.Parameters), "Status": "Pending", "TargetCount": len(sent.InstanceIDs),
	}}, nil
}

// run is the instance executing the command.
func (f *EC2Fake) run(runner func(string, []string) CommandResult, inv *invocation, id string, cmds []string) {
	res := CommandResult{Status: "Success"}
	if runner != nil {
		res = runner(id, cmds)
	}
	f.locked(func() { inv.result, inv.done = res, true })
}

// getCommandInvocation reports an invocation: not yet existing on the
// first poll, in progress on the second, then the runner's result.
func (f *EC2Fake) getCommandInvocation(c Call) (any, error) {
	var in struct {
		CommandId, InstanceId string
	}
	if err := json.Unmarshal(c.Body, &in); err != nil {
		return nil, errorf(400, "SerializationException", "%v", err)
	}
	inv := f.ssm.inv[in.CommandId+"/"+in.InstanceId]
	if inv != nil {
		inv.polls++
	}
	if inv == nil || inv.polls == 1 {
		return nil, errorf(400, "InvocationDoesNotExist", "no invocation for command %s on %s", in.CommandId, in.InstanceId)
	}
	out := map[string]any{
		"CommandId": in.CommandId, "InstanceId": in.InstanceId, "DocumentName": inv.document,
		"PluginName": "aws:runShellScript", "Status": "InProgress", "StatusDetails": "InProgress", "ResponseCode": -1,
		"StandardOutputContent": "", "StandardErrorContent": "",
	}
	if inv.polls == 2 || !inv.done {
		return out, nil
	}
	r := inv.result
	code := r.ResponseCode
	if code == 0 && r.Status == "Failed" {
		code = 1
	}
	out["Status"], out["StatusDetails"], out["ResponseCode"] = r.Status, r.Status, code
	out["StandardOutputContent"] = truncate(r.Stdout, ssmStdoutCap)
	out["StandardErrorContent"] = truncate(r.Stderr, ssmStderrCap)
	return out, nil
}

// truncate keeps the first n characters of s, as SSM does with output.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
