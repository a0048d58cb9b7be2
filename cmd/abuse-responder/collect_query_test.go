package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/abuse-responder/abuse-responder/internal/awstest"
)

// runCollect runs collect in process with stdin, as SSM's shell pipes it.
func runCollect(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{ctx: context.Background(), stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr,
		getenv: func(string) string { return "" }}
	return cmdCollect(e, args), stdout.String(), stderr.String()
}

// ssmCollect makes the fake's SSM run collect on the seed instance as the
// instance would: the pipe's base64 decoded onto the stdin of this
// package's own `collect --json --query -`, with the instance's own
// config over seedHost's infected host. It returns the host's script.
func ssmCollect(t *testing.T, f *awstest.EC2Fake) (script string) {
	t.Helper()
	f.SetSSMManaged(awstest.SeedInstanceID)
	webRoot, accessLog, script := seedHost(t)
	remoteCfg := hostConfigFile(t, "", webRoot, accessLog)
	pipe := regexp.MustCompile(`^echo ([A-Za-z0-9+/=]+) \| base64 -d \| /usr/local/bin/abuse-responder collect --json --query -$`)
	f.SetCommandRunnerResult(func(id string, cmds []string) awstest.CommandResult {
		m := pipe.FindStringSubmatch(strings.Join(cmds, "\n"))
		if m == nil {
			return awstest.CommandResult{Status: "Failed", Stderr: "unexpected command"}
		}
		stdin, _ := base64.StdEncoding.DecodeString(m[1])
		code, out, errOut := runCollect(t, string(stdin), "--json", "--config", remoteCfg, "--query", "-")
		if code != 0 {
			return awstest.CommandResult{Status: "Failed", ResponseCode: code, Stdout: out, Stderr: errOut}
		}
		return awstest.CommandResult{Status: "Success", Stdout: out, Stderr: errOut}
	})
	return script
}

// seedQuery is the seed notice's case as a query: abuse time ± 1h.
const seedQuery = `{"case_id":"13051177299-1","from":"2026-04-14T00:47:02Z","to":"2026-04-14T02:47:02Z",
 "targets":[{"ip":"203.0.113.10","port":443,"protocol":"tcp"}],"target_hosts":["shop.example.org"]}`

func TestCollectQuery(t *testing.T) {
	webRoot, accessLog, script := seedHost(t)
	cfg := hostConfigFile(t, "", webRoot, accessLog)
	code, out, errOut := runCollect(t, seedQuery, "--json", "--config", cfg, "--query", "-")
	var h struct {
		Collected bool   `json:"collected"`
		Where     string `json:"where"`
		Findings  []struct {
			Kind, Path string
			Count      int
		} `json:"findings"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &h) != nil {
		t.Fatalf("collect --query -: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("collect --query - printed %d lines, want one compact object (SSM keeps 24,000 characters)", strings.Count(out, "\n"))
	}
	if !h.Collected || h.Where != "local" || len(h.Findings) != 2 || h.Findings[0].Kind != "script" || h.Findings[0].Path != script ||
		h.Findings[1].Kind != "request" || h.Findings[1].Path != accessLog || h.Findings[1].Count != 3 {
		t.Errorf("collect --query - = %+v, want the script and its 3 requests", h)
	}
}

func TestCollectQueryRejects(t *testing.T) {
	webRoot, accessLog, _ := seedHost(t)
	cfg := hostConfigFile(t, "", webRoot, accessLog)
	window := `"from":"2026-04-14T00:47:02Z","to":"2026-04-14T02:47:02Z"`
	for _, tc := range []struct{ name, stdin, want string }{
		{"unknown field", `{` + window + `,"command":"reboot"}`, `unknown field "command"`},
		{"bad ip", `{` + window + `,"targets":[{"ip":"203.0.113.300","port":22}]}`, `203.0.113.300`},
		{"ip with text", `{` + window + `,"targets":[{"ip":"203.0.113.3; reboot"}]}`, `ParseAddr`},
		{"command substitution", `{` + window + `,"target_hosts":["$(reboot)"]}`, `"$(reboot)" is not a host name`},
		{"separator", `{` + window + `,"target_hosts":[";rm -rf /"]}`, `is not a host name`},
		{"too long host", `{` + window + `,"target_hosts":["` + strings.Repeat("a", 254) + `"]}`, `is not a host name`},
		{"no window", `{"targets":[]}`, `from and to are required`},
		{"empty", ``, `empty`},
		{"oversize", `{"case_id":"` + strings.Repeat("1", 40<<10) + `"}`, `longer than`},
	} {
		code, out, errOut := runCollect(t, tc.stdin, "--json", "--config", cfg, "--query", "-")
		if code != 1 || out != "" || !strings.Contains(errOut, "collect: --query: ") || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1 and %q", tc.name, code, out, errOut, tc.want)
		}
	}
	for _, args := range [][]string{
		{"--json", "--config", cfg, "--query", "query.json"},
		{"--json", "--config", cfg, "--query", "-", "testdata/seed-notice.eml"},
	} {
		if code, _, _ := runCollect(t, seedQuery, args...); code != 2 {
			t.Errorf("collect %q: exit %d, want 2", args, code)
		}
	}
}

// TestAnalyzeThroughSSM is the whole chain: analyze with host_evidence =
// "ssm" sends the query through the fake's SSM, whose instance runs this
// command's own `collect --json --query -` with the decoded stdin on its
// host fixture, and the analysis names the instance's script.
func TestAnalyzeThroughSSM(t *testing.T) {
	awstest.Env(t)
	f := awstest.SeedWorld(t, awstest.SeedOptions{})
	script := ssmCollect(t, f)

	// This machine: a clean host, configured to collect through SSM.
	cleanRoot, cleanLog := t.TempDir(), filepath.Join(t.TempDir(), "access.log")
	os.WriteFile(cleanLog, nil, 0o644)
	cfgPath := hostConfigFile(t, f.URL(), cleanRoot, cleanLog)
	data, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, bytes.Replace(data, []byte(`host_evidence = "local"`), []byte(`host_evidence = "ssm"`), 1), 0o600)

	code, out, errOut := runCmd(t, "analyze", "--json", "--config", cfgPath, "testdata/seed-notice.eml")
	var a struct {
		Verdict string
		Cause   struct{ Path string }
		Host    struct {
			Collected bool
			Where     string
			Problems  []string
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &a) != nil {
		t.Fatalf("analyze --json: exit %d, stderr %q", code, errOut)
	}
	if a.Verdict != "confirmed" || a.Cause.Path != script || !a.Host.Collected || a.Host.Where != "ssm:i-0a1b2c3d4e5f60718" {
		t.Errorf("analyze through SSM = verdict %s, cause %s, host %+v; want confirmed, %s, ssm:i-0a1b2c3d4e5f60718",
			a.Verdict, a.Cause.Path, a.Host, script)
	}
}
