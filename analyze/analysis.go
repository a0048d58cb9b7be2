// Package analyze gathers the facts behind an abuse notice and decides
// what they mean: it resolves the implicated resources in EC2, reads the
// reporter's log extract, our own VPC flow logs and the host's logs, and
// gives a verdict and the likely cause with the lines that support it.
//
// The parts live in subpackages, each with one job: evidence (the
// reporter's text), cloud (EC2 and CloudWatch Logs), host (the machine's
// own logs, web roots, sockets and processes). This package composes them
// and holds the pure decision functions, which are tested on values.
package analyze

import (
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/analyze/cloud"
	"github.com/abuse-responder/abuse-responder/analyze/evidence"
	"github.com/abuse-responder/abuse-responder/analyze/host"
)

// Verdict says how far our own telemetry bears the report out.
type Verdict string

// The verdicts of DESIGN.md.
const (
	// Confirmed: our telemetry shows the traffic (flow-log records or a
	// socket to a target, or a script on the host aimed at a target).
	Confirmed Verdict = "confirmed"
	// NotReproduced: telemetry covers the window and shows none of it.
	NotReproduced Verdict = "not-reproduced"
	// LikelySpoofed: the only link to us is something the reporter could
	// not check, such as an X-Forwarded-For value.
	LikelySpoofed Verdict = "likely-spoofed"
	// Inconclusive: no telemetry either way.
	Inconclusive Verdict = "inconclusive"
)

// Analysis is everything analyze learned about one notice. Its JSON is the
// `analyze --json` contract.
type Analysis struct {
	CaseID  string  `json:"case_id"`
	Verdict Verdict `json:"verdict"`
	// Why says in one sentence what the verdict rests on.
	Why   string `json:"why"`
	Cause Cause  `json:"cause"`
	// Window is the time range searched: the abuse time ± the margin.
	Window    Window           `json:"window"`
	Resources []cloud.Instance `json:"resources"`
	Evidence  evidence.Result  `json:"evidence"`
	Telemetry Telemetry        `json:"telemetry"`
	Host      Host             `json:"host"`
	// Targets are the third parties a block would act on.
	Targets     []abuse.Target `json:"targets"`
	TargetHosts []string       `json:"target_hosts"`
	// Problems say why a part is missing (no [aws] section, AWS denied a
	// call, the host is not the implicated instance): a missing part is
	// recorded, never an error.
	Problems []string `json:"problems"`
}

// Window is a closed time range.
type Window struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Cause is the likely root cause.
type Cause struct {
	// Kind is compromised-web-app, attack-tool, miner, scheduled-job,
	// process, open-proxy, exposed-service or unknown.
	Kind string `json:"kind"`
	// Path is the file at fault, when there is one.
	Path string `json:"path"`
	// Text says it for a person, naming the file.
	Text string `json:"text"`
	// Support are the lines that back the cause up, each naming its source.
	Support []string `json:"support"`
}

// Telemetry is what our own network records say.
type Telemetry struct {
	// FlowLogs has one entry per account and region queried.
	FlowLogs []cloud.Telemetry `json:"flow_logs"`
}

// Host is the host evidence, collected on the machine analyze runs on or
// on the implicated instance through SSM.
type Host struct {
	Collected bool `json:"collected"`
	// Where is "local", or "ssm:" and the instance ID; "" when nothing
	// was attempted. The findings' paths are that machine's.
	Where    string         `json:"where,omitempty"`
	Note     string         `json:"note,omitempty"`
	Findings []host.Finding `json:"findings"`
	Problems []string       `json:"problems,omitempty"`
}
