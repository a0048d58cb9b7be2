package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// runCmd runs one command line in process and returns its exit code and
// output.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, func(string) string { return "" })
	return code, stdout.String(), stderr.String()
}

const fixtures = "../../mail/notice/testdata"

// TestParseJSON runs parse --json over every fixture at once: one object a
// line, in the order of the files, each equal to its golden file apart from
// the problem messages.
func TestParseJSON(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(fixtures, "*.eml"))
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	code, out, errOut := runCmd(t, append([]string{"parse", "--json"}, files...)...)
	if code != 0 {
		t.Fatalf("parse --json exit %d, stderr %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(files) {
		t.Fatalf("parse --json printed %d lines for %d files", len(lines), len(files))
	}
	for i, f := range files {
		var got, want map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		raw, err := os.ReadFile(strings.TrimSuffix(f, ".eml") + ".golden.json")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		if want["is_notice"] == false {
			want["reason"] = got["reason"]
		}
		delete(got, "problems")
		delete(want, "problems")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("parse --json %s:\n got %s\nwant %s", filepath.Base(f), lines[i], raw)
		}
	}
}

// TestParseKeyOrder checks that the JSON keys come in the order of the
// DESIGN.md example, so that people and diff tools can read the output.
func TestParseKeyOrder(t *testing.T) {
	_, out, _ := runCmd(t, "parse", "--json", filepath.Join(fixtures, "s01-port-scanning.eml"))
	want := []string{"file", "is_notice", "provider", "stage", "case_id", "account_id", "abuse_type",
		"reported_activity", "regions", "resources", "abuse_time", "targets", "target_hosts",
		"aws_actions", "sender", "message_id", "subject", "date", "reply_by"}
	last := -1
	for _, k := range want {
		i := strings.Index(out, `"`+k+`":`)
		if i < 0 || i < last {
			t.Fatalf("key %q missing or out of order in %s", k, out)
		}
		last = i
	}
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.eml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("From: a@example.com\nSubject: Your AWS Abuse Report [12345678901]\n\n")
	f.Write(bytes.Repeat([]byte("y"), 50<<20))
	f.Close()

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"no file", []string{"parse"}, 2, "no FILE"},
		{"missing file", []string{"parse", filepath.Join(dir, "nope.eml")}, 1, "no such file"},
		{"50 MB mail", []string{"parse", big}, 1, "too large"},
		{"bad flag", []string{"parse", "--bogus", "x"}, 2, "bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.inStderr) {
				t.Errorf("%v: exit %d stderr %q, want exit %d and %q", tc.args, code, errOut, tc.code, tc.inStderr)
			}
		})
	}
}

// TestCheckConfigFourProblems is the acceptance case: an unknown
// key, a bad duration, a bad CIDR and tls = "none" on a public host give
// exit 2 and name all four, each with its line.
func TestCheckConfigFourProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(path, []byte(`[imap]
address = "mail.example.com:993"
typo_key = 1
tls = "none"
username = "abuse@example.com"
password = "hunter2"
poll_interval = "5 minutes"

[remediate]
allowlist = ["10.0.0.0/8", "10.0.0.300/8"]
`), 0o600)
	code, _, errOut := runCmd(t, "check-config", "--config", path)
	if code != 2 {
		t.Fatalf("check-config exit %d, want 2", code)
	}
	for _, want := range []string{
		path + ":3: imap.typo_key: unknown key",
		path + ":4: imap.tls:",
		path + ":7: imap.poll_interval: invalid duration",
		path + ":10: remediate.allowlist[1]:",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("check-config output lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "hunter2") {
		t.Error("check-config printed the password")
	}
}

func TestCheckConfigValid(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("secret\n"), 0o600)
	example, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(example), "/etc/abuse-responder/imap-password", pw)
	cfg = strings.ReplaceAll(cfg, "/etc/abuse-responder/smtp-password", pw)
	path := filepath.Join(dir, "config.toml")
	os.WriteFile(path, []byte(cfg), 0o600)
	code, out, errOut := runCmd(t, "check-config", "--config", path)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("check-config on the example: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, _ := runCmd(t, "check-config", "--config", filepath.Join(dir, "missing.toml")); code != 2 {
		t.Errorf("check-config on a missing file: exit %d, want 2", code)
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, cmd := range []string{"parse", "check-config", "version", "demo"} {
		code, _, errOut := runCmd(t, cmd, "--help")
		if code != 0 || !strings.Contains(errOut, "Usage: abuse-responder "+cmd) {
			t.Errorf("%s --help: exit %d, output %q", cmd, code, errOut)
		}
	}
	if code, out, _ := runCmd(t, "--help"); code != 0 || !strings.Contains(out, "check-config") {
		t.Errorf("--help: exit %d, output %q", code, out)
	}
	if code, out, _ := runCmd(t, "version"); code != 0 || !strings.HasPrefix(out, "abuse-responder ") {
		t.Errorf("version: exit %d, output %q", code, out)
	}
	if code, _, _ := runCmd(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code, _, _ := runCmd(t); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
}

// TestDemo runs the demo as a newcomer does: the whole loop in
// block-then-confirm mode against the in-process EC2 emulator. The
// summary and the reply show the verified NACL block with UTC times, the
// ACL holds the denies in the band after the block and is back to its
// original entries after the unblock, and the environment the demo set
// for the SDK is restored.
func TestDemo(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID-OF-THE-USER") // must be back after the demo
	code, out, errOut := runCmd(t, "demo")
	if code != 0 || !strings.Contains(out, "13051177201-1") || !strings.Contains(out, "203.0.113.10 port 23/tcp") {
		t.Fatalf("demo: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := os.Getenv("AWS_ACCESS_KEY_ID"); got != "AKID-OF-THE-USER" {
		t.Errorf("AWS_ACCESS_KEY_ID after the demo = %q, want the user's value back", got)
	}
	out = strings.ReplaceAll(out, "=\n", "")
	// section returns the output from the line starting with "== from"
	// up to the next line starting with "== ".
	section := func(from string) string {
		i := strings.Index(out, "\n== "+from)
		if i < 0 {
			t.Fatalf("demo output lacks section %q:\n%s", from, out)
		}
		rest := out[i+1:]
		if j := strings.Index(rest[1:], "\n== "); j >= 0 {
			rest = rest[:j+1]
		}
		return rest
	}
	if !strings.Contains(out, "IN-PROCESS EMULATOR") || !strings.Contains(out, "no AWS account is touched") {
		t.Error("demo output does not say EC2 is an in-process emulator")
	}

	// The analysis ran on the demo host and the emulated account.
	summary := section("2. ")
	for _, want := range []string{"verdict: confirmed", "wp-content/uploads/2026/04/.thumb.php", "Likely cause",
		"instance i-0a1b2c3d4e5f60718 in eu-central-1: running", "flow logs: 203.0.113.10 port 23/tcp: 2 accepted"} {
		if !strings.Contains(summary, want) {
			t.Errorf("demo summary lacks %q", want)
		}
	}
	// Blocked before asking, and verified.
	blocked := regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d UTC: blocked egress tcp to 203\.0\.113\.10/32 port 23 in network ACL acl-\w+; verified: `)
	if !blocked.MatchString(summary) {
		t.Errorf("demo summary does not say the block of 203.0.113.10 port 23 was applied and verified:\n%s", summary)
	}
	// The reply to AWS lists the four actions with their UTC times.
	reply := section("4. ")
	actions := regexp.MustCompile(`(?m)^  - \d{4}-\d\d-\d\d \d\d:\d\d UTC: blocked egress tcp to 203\.0\.113\.\d+/32 port \d+ in network ACL .*; verified: .*$`)
	if !strings.Contains(reply, "Actions taken (times in UTC):") || len(actions.FindAllString(reply, -1)) != 4 {
		t.Errorf("the reply to AWS does not list the 4 blocks with UTC times:\n%s", reply)
	}

	// The ACL tables: rule, action, CIDR, protocol, ports.
	type entry struct{ rule, action, cidr, proto, ports string }
	table := func(text string) []entry {
		var es []entry
		for _, l := range strings.Split(text, "\n") {
			f := strings.Fields(l)
			if len(f) >= 5 && (f[1] == "allow" || f[1] == "deny") {
				es = append(es, entry{f[0], f[1], f[2], f[3], f[4]})
			}
		}
		return es
	}
	before := table(section("0. "))
	want := []entry{{"100", "allow", "0.0.0.0/0", "all", "all"}, {"*", "deny", "0.0.0.0/0", "all", "all"}}
	if !reflect.DeepEqual(before, want) {
		t.Errorf("ACL before = %v, want %v", before, want)
	}
	denies := map[string]bool{}
	for _, e := range table(section("2b. ")) {
		n, err := strconv.Atoi(e.rule)
		if e.action == "deny" && err == nil && n >= 40 && n <= 89 {
			denies[e.cidr+" "+e.proto+" "+e.ports] = true
		}
	}
	for _, d := range []string{"203.0.113.10/32 tcp 23", "203.0.113.10/32 tcp 2323", "203.0.113.11/32 tcp 445", "203.0.113.12/32 tcp 5900"} {
		if !denies[d] {
			t.Errorf("ACL after the block lacks a deny of %s numbered 40-89 (has %v)", d, denies)
		}
	}
	blocks := section("6. ")
	if strings.Count(blocks, "verified  nacl") != 4 {
		t.Errorf("blocks lists %d verified NACL blocks, want 4:\n%s", strings.Count(blocks, "verified  nacl"), blocks)
	}
	unblock := section("7. ")
	if strings.Count(unblock, "removed the block of egress tcp") != 4 {
		t.Errorf("unblock removed %d blocks, want 4:\n%s", strings.Count(unblock, "removed the block of egress tcp"), unblock)
	}
	_, after, _ := strings.Cut(unblock, "after the unblock")
	if got := table(after); !reflect.DeepEqual(got, before) || !strings.Contains(after, "back to its state before the block") {
		t.Errorf("ACL after the unblock = %v, want the original %v", got, before)
	}
}

// TestRunInvalidConfig: run refuses a bad config with exit 2, the status
// the unit's RestartPreventExitStatus stops on.
func TestRunInvalidConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(path, []byte("[imap]\npoll_interval = \"soon\"\n"), 0o600)
	code, _, errOut := runCmd(t, "run", "--config", path)
	if code != 2 || !strings.Contains(errOut, "imap.poll_interval") {
		t.Errorf("run with a bad config: exit %d, stderr %q; want 2 naming the key", code, errOut)
	}
	for _, cmd := range []string{"run", "cases", "approve", "reject"} {
		if code, _, errOut := runCmd(t, cmd, "--help"); code != 0 || !strings.Contains(errOut, "Usage: abuse-responder "+cmd) {
			t.Errorf("%s --help: exit %d, output %q", cmd, code, errOut)
		}
	}
}
