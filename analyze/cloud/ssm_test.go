package cloud

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/internal/awstest"
)

// The SSM tests run the real SDK client against the EC2 fake's Run
// Command, which answers InvocationDoesNotExist, then InProgress, then
// what the test's runner returned.

const testBinary = "/usr/local/bin/abuse-responder"

// wantCommand is the only shape of command RunCollect may send.
var wantCommand = regexp.MustCompile(`^echo [A-Za-z0-9+/=]+ \| base64 -d \| /usr/local/bin/abuse-responder collect --json --query -$`)

const validQuery = `{"case_id":"13051177201-1","from":"2026-04-14T00:47:02Z","to":"2026-04-14T02:47:02Z",
 "targets":[{"ip":"203.0.113.44","port":443,"protocol":"tcp"}],"target_hosts":["shop.example.org"]}`

// ssmFake returns the fake with i-web managed by SSM, clients for it, and
// polls shortened for the test.
func ssmFake(t *testing.T) (*awstest.EC2Fake, *Clients) {
	t.Helper()
	awstest.Env(t)
	first, max := pollFirst, pollMax
	pollFirst, pollMax = 5*time.Millisecond, 20*time.Millisecond
	t.Cleanup(func() { pollFirst, pollMax = first, max })
	f := awstest.NewEC2Fake(t)
	f.SetSSMManaged("i-web")
	c, err := NewClients(context.Background(), Options{Region: awstest.Region, EndpointURL: f.URL(), MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func countCalls(f *awstest.EC2Fake, action string) int {
	n := 0
	for _, a := range f.Calls() {
		if a == action {
			n++
		}
	}
	return n
}

func TestRunCollectSendsOneEncodedCommand(t *testing.T) {
	f, c := ssmFake(t)
	f.SetCommandRunner(func(id string, cmds []string) (string, string) {
		return `{"collected":true,"findings":[]}`, "Success"
	})
	out, err := c.RunCollect(context.Background(), "i-web", []byte(validQuery), testBinary)
	if err != nil {
		t.Fatalf("RunCollect: %v", err)
	}
	if string(out) != `{"collected":true,"findings":[]}` {
		t.Errorf("RunCollect stdout = %q", out)
	}
	sent := f.SentCommands()
	if len(sent) != 1 {
		t.Fatalf("SentCommands = %+v, want exactly one", sent)
	}
	s := sent[0]
	if s.DocumentName != "AWS-RunShellScript" || len(s.InstanceIDs) != 1 || s.InstanceIDs[0] != "i-web" ||
		s.TimeoutSeconds < 30 || s.TimeoutSeconds > 600 || len(s.Parameters["executionTimeout"]) != 1 {
		t.Errorf("SendCommand = %+v, want AWS-RunShellScript on i-web with bounded timeouts", s)
	}
	if len(s.Commands) != 1 || !wantCommand.MatchString(s.Commands[0]) {
		t.Fatalf("commands = %q, want one matching %s", s.Commands, wantCommand)
	}
	// Even a valid query's text never appears raw in the command.
	for _, raw := range []string{"shop.example.org", "203.0.113.44", "13051177201-1", "{", "\""} {
		if strings.Contains(s.Commands[0], raw) {
			t.Errorf("command %q contains report text %q", s.Commands[0], raw)
		}
	}
	b64 := strings.Fields(s.Commands[0])[1]
	decoded, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("base64 in the command: %v", err)
	}
	got, err := ParseCollectQuery(decoded)
	want, _ := ParseCollectQuery([]byte(validQuery))
	if err != nil || !got.From.Equal(want.From) || !got.To.Equal(want.To) || got.CaseID != want.CaseID ||
		len(got.Targets) != 1 || got.Targets[0] != want.Targets[0] || len(got.TargetHosts) != 1 || got.TargetHosts[0] != "shop.example.org" {
		t.Errorf("decoded query = %+v, %v; want %+v", got, err, want)
	}
	// Polling went through DoesNotExist and InProgress to Success.
	if n := countCalls(f, "GetCommandInvocation"); n != 3 {
		t.Errorf("GetCommandInvocation called %d times, want 3 (DoesNotExist, InProgress, Success); calls %v", n, f.Calls())
	}
}

func TestRunCollectRejectsBeforeAnyCall(t *testing.T) {
	f, c := ssmFake(t)
	query := func(hosts ...string) []byte {
		b, _ := json.Marshal(map[string]any{"case_id": "1-1", "from": "2026-04-14T00:00:00Z", "to": "2026-04-14T02:00:00Z",
			"targets": []any{}, "target_hosts": hosts})
		return b
	}
	for _, tc := range []struct {
		name, instance, binary string
		query                  []byte
		want                   string
	}{
		{"command substitution", "i-web", testBinary, query("$(reboot)"), "not a host name"},
		{"command separator", "i-web", testBinary, query(";rm -rf /"), "not a host name"},
		{"backticks", "i-web", testBinary, query("`id`.example.org"), "not a host name"},
		{"newline", "i-web", testBinary, query("shop.example.org\nreboot"), "not a host name"},
		{"unknown field", "i-web", testBinary, []byte(`{"from":"2026-04-14T00:00:00Z","to":"2026-04-14T01:00:00Z","cmd":"reboot"}`), "unknown field"},
		{"bad ip", "i-web", testBinary, []byte(`{"from":"2026-04-14T00:00:00Z","to":"2026-04-14T01:00:00Z","targets":[{"ip":"203.0.113.999"}]}`), "203.0.113.999"},
		{"no window", "i-web", testBinary, []byte(`{"targets":[]}`), "from and to are required"},
		{"two values", "i-web", testBinary, []byte(validQuery + validQuery), "more than one JSON value"},
		{"hostile binary", "i-web", "/usr/bin/abuse-responder; reboot", []byte(validQuery), "not a plain absolute path"},
		{"relative binary", "i-web", "abuse-responder", []byte(validQuery), "not a plain absolute path"},
		{"hostile instance", "i-web;reboot", testBinary, []byte(validQuery), "not an instance ID"},
	} {
		_, err := c.RunCollect(context.Background(), tc.instance, tc.query, tc.binary)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: RunCollect error = %v, want %q", tc.name, err, tc.want)
		}
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("calls = %v, want none: invalid input must be refused before SSM", calls)
	}
}

func TestRunCollectFailedGivesStderr(t *testing.T) {
	f, c := ssmFake(t)
	f.SetCommandRunnerResult(func(string, []string) awstest.CommandResult {
		return awstest.CommandResult{Status: "Failed", ResponseCode: 2,
			Stderr: "collect: flag provided but not defined: -query\n"}
	})
	_, err := c.RunCollect(context.Background(), "i-web", []byte(validQuery), testBinary)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Status != "Failed" || ce.ExitCode != 2 ||
		!strings.Contains(err.Error(), "flag provided but not defined: -query") {
		t.Errorf("RunCollect error = %v, want a CommandError with the stderr", err)
	}
}

func TestRunCollectTruncated(t *testing.T) {
	f, c := ssmFake(t)
	size := 0
	f.SetCommandRunner(func(string, []string) (string, string) { return strings.Repeat("x", size), "Success" })
	for _, tc := range []struct {
		size      int
		truncated bool
	}{{23999, false}, {24000, true}, {30000, true}} {
		size = tc.size
		out, err := c.RunCollect(context.Background(), "i-web", []byte(validQuery), testBinary)
		if got := errors.Is(err, ErrOutputTruncated); got != tc.truncated || (!tc.truncated && (err != nil || len(out) != tc.size)) {
			t.Errorf("stdout of %d characters: %d bytes, error %v; want truncated %v", tc.size, len(out), err, tc.truncated)
		}
	}
	_, err := c.RunCollect(context.Background(), "i-web", []byte(validQuery), testBinary)
	if err == nil || !strings.Contains(err.Error(), "S3") {
		t.Errorf("truncation error = %v, want it to name an S3 output bucket as the way out", err)
	}
}

func TestRunCollectNotManaged(t *testing.T) {
	f, c := ssmFake(t)
	_, err := c.RunCollect(context.Background(), "i-other", []byte(validQuery), testBinary)
	if !IsNotManaged(err) || !strings.Contains(err.Error(), "i-other is not managed by SSM") {
		t.Errorf("RunCollect on an unmanaged instance: %v, want a not-managed error", err)
	}
	if n := countCalls(f, "GetCommandInvocation"); n != 0 {
		t.Errorf("GetCommandInvocation called %d times after a refused send", n)
	}
}

func TestRunCollectStopsWithContext(t *testing.T) {
	f, c := ssmFake(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.SetCommandRunner(func(string, []string) (string, string) {
		<-release // the instance never finishes while the test waits
		return "", "Success"
	})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.RunCollect(ctx, "i-web", []byte(validQuery), testBinary)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Errorf("RunCollect after cancel: %v after %v, want context.Canceled at once", err, time.Since(start))
	}
	// A poll sent just before the cancel may reach the fake just after
	// RunCollect returned: let it land, then check that none follow.
	time.Sleep(50 * time.Millisecond)
	polls := countCalls(f, "GetCommandInvocation")
	time.Sleep(100 * time.Millisecond)
	if later := countCalls(f, "GetCommandInvocation"); later != polls || polls < 2 {
		t.Errorf("GetCommandInvocation calls: %d at cancel, %d later; want polling (≥2) that stops", polls, later)
	}
}

func TestRunCollectTransportError(t *testing.T) {
	f, c := ssmFake(t)
	f.FailNext("SendCommand", "AccessDeniedException", 400, 1)
	_, err := c.RunCollect(context.Background(), "i-web", []byte(validQuery), testBinary)
	if !IsAccessDenied(err) || !strings.Contains(err.Error(), "ssm send-command to i-web") {
		t.Errorf("RunCollect denied: %v, want an access-denied error naming the call", err)
	}
}

func TestCollectQueryOwnPorts(t *testing.T) {
	ok := `{"case_id":"1-1","from":"2026-04-14T00:00:00Z","to":"2026-04-14T02:00:00Z","targets":[],"target_hosts":[],"own_ports":[3128,8080],"own_ports_guessed":true}`
	q, err := ParseCollectQuery([]byte(ok))
	if err != nil || len(q.OwnPorts) != 2 || q.OwnPorts[0] != 3128 || !q.OwnPortsGuessed {
		t.Errorf("ParseCollectQuery(own ports) = %+v, %v", q, err)
	}
	bad := strings.Replace(ok, "[3128,8080]", "[0]", 1)
	if _, err := ParseCollectQuery([]byte(bad)); err == nil || !strings.Contains(err.Error(), "own_ports[0]") {
		t.Errorf("ParseCollectQuery(port 0) = %v, want an error naming own_ports[0]", err)
	}
}
