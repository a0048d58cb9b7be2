package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/abuse-responder/abuse-responder/internal/awsconf"
	"github.com/abuse-responder/abuse-responder/internal/awstest"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/remediate/probe"
)

// probePipe is the only command the daemon may send for the connect test.
var probePipe = regexp.MustCompile(`^echo ([A-Za-z0-9+/=]+) \| base64 -d \| /usr/local/bin/abuse-responder probe --json -$`)

// runProbe runs `probe ARGS` in process with stdin, as SSM's shell pipes it.
func runProbe(stdin string, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	e := &env{ctx: context.Background(), stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr,
		getenv: func(string) string { return "" }}
	return cmdProbe(e, args), stdout.String(), stderr.String()
}

// openPort is a local TCP listener that accepts and closes: a target
// that no block stops.
func openPort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// closedPort is a local port nothing listens on: a connect is refused at
// once, as behind a reject.
func closedPort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return ap
}

// TestProbeCommand: `probe --json -` connects to each target and prints
// one JSON line, in the request's order.
func TestProbeCommand(t *testing.T) {
	open, closed := openPort(t), closedPort(t)
	req := fmt.Sprintf(`{"targets":[{"ip":"127.0.0.1","port":%d,"protocol":"tcp"},{"ip":"127.0.0.1","port":%d,"protocol":"tcp"}],"timeout":"3s"}`,
		open.Port(), closed.Port())
	code, out, errOut := runProbe(req, "--json", "-")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("probe --json -: exit %d, stdout %q, stderr %q; want 0 and one line", code, out, errOut)
	}
	var ans probe.Answer
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ans); err != nil || len(ans.Results) != 2 {
		t.Fatalf("answer %q: %v, want two results", out, err)
	}
	if r := ans.Results[0]; r.IP != "127.0.0.1" || r.Port != int(open.Port()) || !r.Connected || r.Error != "" {
		t.Errorf("open port: %+v, want connected", r)
	}
	if r := ans.Results[1]; r.IP != "127.0.0.1" || r.Port != int(closed.Port()) || r.Connected || r.Error != "connection refused" {
		t.Errorf("closed port: %+v, want connection refused", r)
	}
	if !strings.Contains(out, `"connected":false,"error":"connection refused","ms":`) {
		t.Errorf("answer %q lacks the documented field order", out)
	}

	// Without --json: a sentence per target.
	code, out, _ = runProbe(req, "-")
	if code != 0 || !strings.Contains(out, "succeeded in") || !strings.Contains(out, "failed in") || !strings.Contains(out, "connection refused") {
		t.Errorf("probe -: exit %d, stdout %q", code, out)
	}
}

// TestProbeCommandRefuses feeds `probe --json -` requests it must refuse:
// exit 1, the reason on stderr, nothing dialled or printed.
func TestProbeCommandRefuses(t *testing.T) {
	target := func(ip string, port int, proto string) string {
		return fmt.Sprintf(`{"ip":%q,"port":%d,"protocol":%q}`, ip, port, proto)
	}
	req := func(targets ...string) string {
		return `{"targets":[` + strings.Join(targets, ",") + `],"timeout":"3s"}`
	}
	many := make([]string, probe.MaxTargets+1)
	for i := range many {
		many[i] = target("203.0.113.5", 22, "tcp")
	}
	valid := req(target("203.0.113.5", 22, "tcp"))
	for _, tc := range []struct{ name, stdin, want string }{
		{"unknown field", strings.Replace(valid, `"timeout"`, `"data":"GET /","timeout"`, 1), `unknown field "data"`},
		{"unknown target field", req(`{"ip":"203.0.113.5","port":22,"protocol":"tcp","send":"x"}`), `unknown field "send"`},
		{"every address", req(target("0.0.0.0", 22, "tcp")), "not a unicast address"},
		{"every address, mapped", req(target("::ffff:0.0.0.0", 22, "tcp")), "not a unicast address"},
		{"multicast", req(target("224.0.0.1", 22, "tcp")), "not a unicast address"},
		{"zone", req(target("fe80::1%eth0", 22, "tcp")), "not a unicast address"},
		{"not an address", req(target("shop.example.org", 22, "tcp")), "ParseAddr"},
		{"port 0", req(target("203.0.113.5", 0, "tcp")), "port 0 is not 1 to 65535"},
		{"port 65536", req(target("203.0.113.5", 65536, "tcp")), "port 65536"},
		{"udp", req(target("203.0.113.5", 53, "udp")), `protocol "udp" is not "tcp"`},
		{"icmp", req(target("203.0.113.5", 1, "icmp")), `protocol "icmp" is not "tcp"`},
		{"no targets", req(), "0 targets"},
		{"33 targets", req(many...), "33 targets, want 1 to 32"},
		{"long timeout", strings.Replace(valid, `"3s"`, `"11s"`, 1), "at most 10s"},
		{"no timeout", strings.Replace(valid, `,"timeout":"3s"`, ``, 1), "timeout"},
		{"two values", valid + "{}", "more than one JSON value"},
		{"empty", "", "empty"},
		{"oversize", `{"targets":[],"timeout":"` + strings.Repeat("1", probe.MaxRequestBytes) + `"}`, "longer than"},
	} {
		code, out, errOut := runProbe(tc.stdin, "--json", "-")
		if code != 1 || out != "" || !strings.Contains(errOut, "probe: request") || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1 and %q", tc.name, code, out, errOut, tc.want)
		}
	}
	for _, args := range [][]string{{"--json"}, {"--json", "request.json"}, {"--json", "-", "x"}, {"--data", "-"}} {
		if code, _, _ := runProbe(valid, args...); code != 2 {
			t.Errorf("probe %q: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := runCmd(t, "--help"); code != 0 || !strings.Contains(out, "probe ") || !strings.Contains(out, "used through SSM") {
		t.Errorf("--help: exit %d, stdout %s; want probe listed", code, out)
	}
}

// probeInstance makes the fake's SSM run every command on the seed
// instance as the instance would: the pipe's base64 decoded onto the
// stdin of this package's own `probe --json -`. It returns the commands
// sent and their decoded stdin, in order.
func probeInstance(t *testing.T, f *awstest.EC2Fake) (sent func() (cmds, stdins []string)) {
	t.Helper()
	f.SetSSMManaged(seedInstance)
	var (
		mu           sync.Mutex
		cmds, stdins []string
	)
	f.SetCommandRunnerResult(func(id string, commands []string) awstest.CommandResult {
		cmd := strings.Join(commands, "\n")
		m := probePipe.FindStringSubmatch(cmd)
		var stdin []byte
		if m != nil {
			stdin, _ = base64.StdEncoding.DecodeString(m[1])
		}
		mu.Lock()
		cmds, stdins = append(cmds, cmd), append(stdins, string(stdin))
		mu.Unlock()
		if m == nil || id != seedInstance {
			return awstest.CommandResult{Status: "Failed", ResponseCode: 127, Stderr: "unexpected command"}
		}
		code, out, errOut := runProbe(string(stdin), "--json", "-")
		if code != 0 {
			return awstest.CommandResult{Status: "Failed", ResponseCode: code, Stdout: out, Stderr: errOut}
		}
		return awstest.CommandResult{Status: "Success", Stdout: out, Stderr: errOut}
	})
	return func() ([]string, []string) {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), cmds...), append([]string(nil), stdins...)
	}
}

// readBack is the EC2 backend's half of Verify for the Verifier tests:
// the read-back holds, so only the connect can say otherwise.
type readBack struct{ remediate.Backend }

func (readBack) Verify(_ context.Context, a remediate.Action) (remediate.Check, error) {
	return remediate.Check{Key: a.Key, Holds: true, Detail: "entry 40 deny present"}, nil
}

// TestVerifyFromInstance drives probe.Verifier over the fake's SSM, whose
// instance runs this package's `probe --json -`: a target that accepts
// makes the check fail, a refused one keeps it, and an instance SSM
// cannot reach leaves a note.
func TestVerifyFromInstance(t *testing.T) {
	awstest.Env(t)
	f := awstest.NewEC2Fake(t)
	sent := probeInstance(t, f)
	v, err := probe.Wrap(readBack{}, probe.Options{AWS: &awsconf.Accounts{EndpointURL: f.URL(), List: []awsconf.Account{{ID: "111122223333"}}}})
	if err != nil {
		t.Fatal(err)
	}
	open, closed := openPort(t), closedPort(t)
	action := func(kind remediate.Kind, target netip.AddrPort, proto, instance string) remediate.Action {
		return remediate.Action{Key: "1-1:" + string(kind) + ":x", Kind: kind, InstanceID: instance, Account: "111122223333",
			Region: "eu-central-1", Target: netip.PrefixFrom(target.Addr(), 32), Protocol: proto, Port: target.Port()}
	}
	ctx := context.Background()

	chk, err := v.Verify(ctx, action(remediate.KindNACL, open, "tcp", seedInstance))
	want := fmt.Sprintf("entry 40 deny present; from the instance: connect to %s connected in ", open)
	if err != nil || chk.Holds || !strings.HasPrefix(chk.Detail, want) || !strings.HasSuffix(chk.Detail, " s: the block does not hold") {
		t.Errorf("Verify with the target accepting = %+v, %v; want it not to hold, detail %q…", chk, err, want)
	}
	chk, err = v.Verify(ctx, action(remediate.KindSecurityGroup, closed, "tcp", seedInstance))
	want = fmt.Sprintf("entry 40 deny present; from the instance: connect to %s failed (connection refused after ", closed)
	if err != nil || !chk.Holds || !strings.HasPrefix(chk.Detail, want) || !strings.HasSuffix(chk.Detail, " s)") {
		t.Errorf("Verify with the target refusing = %+v, %v; want it to hold, detail %q…", chk, err, want)
	}

	// The exact commands, and what travelled on their stdin.
	cmds, stdins := sent()
	if len(cmds) != 2 {
		t.Fatalf("%d commands sent, want 2: %q", len(cmds), cmds)
	}
	for i, ap := range []netip.AddrPort{open, closed} {
		if !probePipe.MatchString(cmds[i]) {
			t.Errorf("command %q does not match %s", cmds[i], probePipe)
		}
		wantIn := fmt.Sprintf(`{"targets":[{"ip":"127.0.0.1","port":%d,"protocol":"tcp"}],"timeout":"3s"}`, ap.Port())
		if stdins[i] != wantIn {
			t.Errorf("stdin %d = %s, want %s", i, stdins[i], wantIn)
		}
	}
	for _, s := range f.SentCommands() {
		if s.DocumentName != "AWS-RunShellScript" || !strings.HasPrefix(s.Comment, "abuse-responder probe 1-1:") {
			t.Errorf("SendCommand %+v: want AWS-RunShellScript and a probe comment", s)
		}
	}

	// No connect can test these: nothing is sent, the check is the read-back's.
	for _, a := range []remediate.Action{
		action(remediate.KindNACL, open, "", seedInstance),    // every protocol
		action(remediate.KindNACL, open, "udp", seedInstance), // silence proves nothing
		action(remediate.KindQuarantine, open, "tcp", seedInstance),
	} {
		chk, err := v.Verify(ctx, a)
		if err != nil || !chk.Holds || chk.Detail != "entry 40 deny present" {
			t.Errorf("Verify %s %q = %+v, %v; want the read-back alone", a.Kind, a.Protocol, chk, err)
		}
	}
	if cmds, _ := sent(); len(cmds) != 2 {
		t.Errorf("%d commands sent after the untestable actions, want still 2", len(cmds))
	}

	// SSM cannot run it: the check stands, with why.
	chk, err = v.Verify(ctx, action(remediate.KindNACL, open, "tcp", "i-0ffffffffffffffff"))
	if err != nil || !chk.Holds || !strings.HasSuffix(chk.Detail, "; no connect test from the instance: i-0ffffffffffffffff is not managed by SSM, not running, or its agent is offline") {
		t.Errorf("Verify on an unmanaged instance = %+v, %v; want it to hold with a note", chk, err)
	}
	f.FailNext("SendCommand", "AccessDeniedException", 400, 1)
	chk, err = v.Verify(ctx, action(remediate.KindNACL, open, "tcp", seedInstance))
	if err != nil || !chk.Holds || !strings.Contains(chk.Detail, "; no connect test from the instance: SSM refused the command") {
		t.Errorf("Verify with SendCommand denied = %+v, %v; want it to hold with a note", chk, err)
	}
}

// TestApplyVerifiesFromInstance is apply by hand on the fake with a
// notice naming tcp/443: with verify_from_instance the NACL block's check
// ends with the connect from the instance, and without it no command is
// sent at all.
func TestApplyVerifiesFromInstance(t *testing.T) {
	seed, err := os.ReadFile("testdata/seed-notice.eml")
	if err != nil {
		t.Fatal(err)
	}
	// A firewall line in the report names the protocol, so the block is
	// of tcp/443 rather than of every protocol.
	const target = "Source IP: 198.51.100.7   Target: shop.example.org (203.0.113.44:443)   Time zone: UTC\n"
	if !bytes.Contains(seed, []byte(target)) {
		t.Fatal("the seed notice changed: no Target line")
	}
	notice := filepath.Join(t.TempDir(), "tcp-notice.eml")
	ufw := "Apr 14 01:46:58 shop kernel: [UFW BLOCK] IN= OUT=eth0 SRC=10.0.1.5 DST=203.0.113.44 LEN=60 TTL=64 PROTO=TCP SPT=40000 DPT=443 SYN URGP=0\n"
	if err := os.WriteFile(notice, bytes.Replace(seed, []byte(target), []byte(target+ufw), 1), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("verify_from_instance=%t", on), func(t *testing.T) {
			f := blockWorld(t)
			sent := probeInstance(t, f)
			cfg := blockConfig(t, f.URL(), fmt.Sprintf("actions = [\"nacl\"]\nverify_from_instance = %t\n", on))
			code, out, errOut := runCmd(t, "apply", "--config", cfg, notice)
			if !strings.Contains(out, "blocked egress tcp to 203.0.113.44/32 port 443 in network ACL acl-a") {
				t.Fatalf("apply: exit %d, stdout %s, stderr %q; want the tcp/443 NACL block", code, out, errOut)
			}
			var sends int
			for _, c := range f.CallLog() {
				if c.Service == "ssm" && c.Action == "SendCommand" {
					sends++
				}
			}
			cmds, stdins := sent()
			if !on {
				if code != 0 || sends != 0 || strings.Contains(out, "from the instance") {
					t.Errorf("without verify_from_instance: %d SendCommand calls, stdout %s; want none and no connect test", sends, out)
				}
				return
			}
			if sends != 1 || len(cmds) != 1 || !probePipe.MatchString(cmds[0]) ||
				stdins[0] != `{"targets":[{"ip":"203.0.113.44","port":443,"protocol":"tcp"}],"timeout":"3s"}` {
				t.Fatalf("with verify_from_instance: %d SendCommand calls, commands %q, stdin %q; want one probe of 203.0.113.44:443", sends, cmds, stdins)
			}
			// The "instance" is this test's host, where no NACL applies:
			// 203.0.113.44 is TEST-NET-3, so the connect usually fails
			// (unreachable, or a timeout) as it would behind the deny, and
			// the apply succeeds. Behind a transparent proxy it connects,
			// and then the apply must fail saying the block does not hold.
			const from = "; from the instance: connect to 203.0.113.44:443 "
			switch {
			case code == 0 && strings.Contains(out, "verified: ") && strings.Contains(out, from+"failed ("):
			case code == 1 && strings.Contains(out, from+"connected in ") && strings.Contains(errOut, "the block does not hold"):
			default:
				t.Errorf("apply: exit %d, stdout %s, stderr %q; want the connect from the instance in the check", code, out, errOut)
			}
		})
	}
}
