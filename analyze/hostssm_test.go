package analyze

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/abuse-responder/abuse-responder/internal/awstest"
)

const seedInstance = "i-0a1b2c3d4e5f60718"

// commandRE takes the query back out of the command SSM was given.
var commandRE = regexp.MustCompile(`^echo ([A-Za-z0-9+/=]+) \| base64 -d \| (/[A-Za-z0-9._/-]+) collect --json --query -$`)

// remoteHost makes the fake's instances run the real collect code path on
// an infected host fixture: the runner decodes the query from the command
// text, as `base64 -d` would, parses it as `collect --query -` does, runs
// CollectQuery there and answers its JSON. It returns the fixture's script
// and the instances that ran a command.
func remoteHost(t *testing.T, f *awstest.EC2Fake) (script string, ran func() []string) {
	t.Helper()
	webRoot, accessLog := hostTree(t, true)
	script = filepath.Join(webRoot, "wp-content", "uploads", "2026", "04", "cache.php")
	remote := New(testConfig(nil, webRoot, accessLog), nil)
	var mu sync.Mutex
	var ids []string
	f.SetCommandRunnerResult(func(id string, cmds []string) awstest.CommandResult {
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
		m := commandRE.FindStringSubmatch(strings.Join(cmds, "\n"))
		if m == nil || m[2] != DefaultRemoteBinary {
			return awstest.CommandResult{Status: "Failed", Stderr: "unexpected command: " + strings.Join(cmds, "\n")}
		}
		stdin, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil {
			return awstest.CommandResult{Status: "Failed", Stderr: "base64: " + err.Error()}
		}
		q, err := ParseHostQuery(stdin)
		if err != nil {
			return awstest.CommandResult{Status: "Failed", ResponseCode: 1, Stderr: "collect: --query: " + err.Error()}
		}
		out, err := json.Marshal(remote.CollectQuery(context.Background(), q))
		if err != nil {
			return awstest.CommandResult{Status: "Failed", Stderr: err.Error()}
		}
		return awstest.CommandResult{Stdout: string(out) + "\n", Status: "Success"}
	})
	return script, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), ids...)
	}
}

// localConfig is the analyzer's own machine: a clean host, so that a
// finding can only have come from the instance.
func localConfig(t *testing.T, f *awstest.EC2Fake, mode HostMode) Config {
	webRoot, accessLog := hostTree(t, false)
	cfg := testConfig(f, webRoot, accessLog)
	cfg.HostMode = mode
	return cfg
}

func TestHostModeSSM(t *testing.T) {
	f := seedFake(t)
	f.SetSSMManaged(seedInstance)
	script, ran := remoteHost(t, f)
	a := New(localConfig(t, f, HostSSM), nil).Analyze(context.Background(), seedNotice(seedEvidence))

	if a.Host.Where != "ssm:"+seedInstance || !a.Host.Collected {
		t.Fatalf("Host = %+v, want collected on ssm:%s", a.Host, seedInstance)
	}
	if a.Verdict != Confirmed || a.Cause.Path != script || !strings.Contains(a.Cause.Text, "cache.php") {
		t.Errorf("Analyze = %s (%s), cause %+v; want confirmed with the instance's script %s", a.Verdict, a.Why, a.Cause, script)
	}
	if len(a.Host.Findings) != 2 || a.Host.Findings[0].Kind != "script" || a.Host.Findings[1].Kind != "request" {
		t.Errorf("Host.Findings = %+v, want the script and the requests to it", a.Host.Findings)
	}
	if ids := ran(); len(ids) != 1 || ids[0] != seedInstance {
		t.Errorf("commands ran on %v, want %s once", ids, seedInstance)
	}
	sent := f.SentCommands()
	if len(sent) != 1 || strings.Contains(sent[0].Commands[0], "shop.example.org") {
		t.Errorf("SentCommands = %+v, want one with the query encoded", sent)
	}
}

func TestHostModeAutoThroughSSM(t *testing.T) {
	f := seedFake(t)
	f.SetSSMManaged(seedInstance)
	script, _ := remoteHost(t, f)
	cfg := localConfig(t, f, HostAuto)
	cfg.Identity = func(context.Context) string { return "i-0fffffffffffffff0" }
	a := New(cfg, nil).Analyze(context.Background(), seedNotice(seedEvidence))
	if a.Host.Where != "ssm:"+seedInstance || a.Verdict != Confirmed || a.Cause.Path != script {
		t.Errorf("Analyze = %s, cause %q, host %+v; want confirmed from %s through SSM", a.Verdict, a.Cause.Path, a.Host, seedInstance)
	}
}

func TestHostModeSSMNotManaged(t *testing.T) {
	// SSM does not know the instance: auto keeps today's note; ssm says so.
	f := seedFake(t)
	remoteHost(t, f)
	cfg := localConfig(t, f, HostAuto)
	cfg.Identity = func(context.Context) string { return "i-0fffffffffffffff0" }
	a := New(cfg, nil).Analyze(context.Background(), seedNotice(seedEvidence))
	if a.Host.Collected || !strings.Contains(a.Host.Note, "not the implicated instance") {
		t.Errorf("auto, not managed: Host = %+v, want today's note", a.Host)
	}
	a = New(localConfig(t, f, HostSSM), nil).Analyze(context.Background(), seedNotice(seedEvidence))
	if a.Host.Collected || a.Host.Where != "ssm:"+seedInstance || len(a.Host.Problems) != 1 ||
		!strings.Contains(a.Host.Problems[0], "not managed by SSM") {
		t.Errorf("ssm, not managed: Host = %+v, want the problem named", a.Host)
	}
	if len(f.SentCommands()) != 0 {
		t.Errorf("SentCommands = %+v, want none to an unmanaged instance", f.SentCommands())
	}
}

func TestHostModeSSMCommandFails(t *testing.T) {
	f := seedFake(t, "203.0.113.44")
	f.SetSSMManaged(seedInstance)
	f.SetCommandRunnerResult(func(string, []string) awstest.CommandResult {
		return awstest.CommandResult{Status: "Failed", ResponseCode: 127, Stderr: "sh: 1: /usr/local/bin/abuse-responder: not found\n"}
	})
	a := New(localConfig(t, f, HostSSM), nil).Analyze(context.Background(), seedNotice(seedEvidence))
	if a.Host.Collected || len(a.Host.Problems) != 1 || !strings.Contains(a.Host.Problems[0], "abuse-responder: not found") {
		t.Errorf("Host = %+v, want the failed command's stderr as the problem", a.Host)
	}
	// The flow logs still decide.
	if a.Verdict != Confirmed {
		t.Errorf("Verdict = %s (%s), want confirmed from the flow logs", a.Verdict, a.Why)
	}
	lines := strings.Join(a.SummaryLines(), "\n")
	if !strings.Contains(lines, "not found") {
		t.Errorf("SummaryLines lack the SSM problem:\n%s", lines)
	}
}

func TestCollectQueryRejectsInvalid(t *testing.T) {
	webRoot, accessLog := hostTree(t, true)
	q, err := ParseHostQuery([]byte(`{"from":"2026-04-14T00:00:00Z","to":"2026-04-14T03:00:00Z","target_hosts":["shop.example.org"]}`))
	if err != nil {
		t.Fatal(err)
	}
	q.TargetHosts = append(q.TargetHosts, "$(reboot)")
	h := New(testConfig(nil, webRoot, accessLog), nil).CollectQuery(context.Background(), q)
	if h.Collected || !strings.Contains(h.Note, "not a host name") {
		t.Errorf("CollectQuery with a hostile host = %+v, want refused", h)
	}
}
