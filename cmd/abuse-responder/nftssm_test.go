package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/abuse-responder/abuse-responder/config"
	"github.com/abuse-responder/abuse-responder/internal/awstest"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/remediate/nft"
)

// nftPipe is the only command the daemon may send for nftables.
var nftPipe = regexp.MustCompile(`^echo ([A-Za-z0-9+/=]+) \| base64 -d \| /usr/local/bin/abuse-responder nft (apply|verify|undo) -$`)

const (
	seedInstance = "i-0a1b2c3d4e5f60718"
	seedTarget   = "203.0.113.44" // the seed notice's target, port 443
)

// runNft runs `nft ARGS` in process with stdin, as SSM's shell pipes it.
func runNft(stdin string, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	e := &env{ctx: context.Background(), stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr,
		getenv: func(string) string { return "" }}
	return cmdNft(e, args), stdout.String(), stderr.String()
}

// instanceNS is the instance's network: namespace near (the instance,
// where `nft` works) joined by a veth pair to far, which holds the seed
// notice's target address with a listener on its port 443.
type instanceNS struct {
	near, far string // names under /run/netns
}

// newInstanceNS builds the namespaces, removed when the test ends. It
// needs root: skipped without, unless CI is set, where it fails.
func newInstanceNS(t *testing.T) *instanceNS {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but the test is not root: it needs root to create network namespaces and nftables rules")
		}
		t.Skip("needs root to create network namespaces and nftables rules (CI runs it as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but ip is missing: install iproute2")
		}
		t.Skip("needs ip (apt-get install iproute2)")
	}
	id := fmt.Sprint(os.Getpid() % 100000)
	n := &instanceNS{near: "ssmn" + id, far: "ssmf" + id}
	for _, ns := range []string{n.near, n.far} {
		nsRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	vn, vf := "svn"+id, "svf"+id
	nsRun(t, "ip", "-n", n.near, "link", "add", vn, "type", "veth", "peer", "name", vf, "netns", n.far)
	nsRun(t, "ip", "-n", n.near, "addr", "add", "203.0.113.1/24", "dev", vn)
	nsRun(t, "ip", "-n", n.far, "addr", "add", seedTarget+"/24", "dev", vf)
	for _, x := range [][2]string{{n.near, vn}, {n.far, vf}, {n.near, "lo"}, {n.far, "lo"}} {
		nsRun(t, "ip", "-n", x[0], "link", "set", x[1], "up")
	}
	for _, x := range [][2]string{{n.near, vn}, {n.far, vf}} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			out, _ := exec.Command("ip", "-n", x[0], "-o", "link", "show", "dev", x[1]).CombinedOutput()
			if strings.Contains(string(out), "state UP") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("link %s in %s not up after 5 s: %s", x[1], x[0], out)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ln, err := inNS(n.path(n.far), func() (net.Listener, error) { return net.Listen("tcp", ":443") })
	if err != nil {
		t.Fatalf("listen in %s: %v", n.far, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return n
}

func (n *instanceNS) path(name string) string { return filepath.Join("/run/netns", name) }

// dial connects from the instance to the target's port 443.
func (n *instanceNS) dial() error {
	c, err := inNS(n.path(n.near), func() (net.Conn, error) {
		return net.DialTimeout("tcp", seedTarget+":443", 3*time.Second)
	})
	if err != nil {
		return err
	}
	return c.Close()
}

// inNS runs do on a thread moved into the namespace at path. The thread
// is never moved back: it ends with its goroutine, since a locked thread
// that exits locked is discarded by the runtime.
func inNS[T any](path string, do func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: see above
		f, err := os.Open(path)
		if err == nil {
			err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
			f.Close()
		}
		if err != nil {
			ch <- result{err: fmt.Errorf("enter %s: %w", path, err)}
			return
		}
		v, err := do()
		ch <- result{v, err}
	}()
	r := <-ch
	return r.v, r.err
}

func nsRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// ssmInstance makes the fake's SSM run every command on the seed
// instance as the instance would: the pipe's base64 decoded onto the
// stdin of this package's own `nft OP -`, whose host backend works in
// the namespace near. It returns the commands sent and the answers of
// `nft apply -`, in order.
func ssmInstance(t *testing.T, f *awstest.EC2Fake, n *instanceNS) (sent func() []string, applied func() []remediate.Change) {
	t.Helper()
	saved := nftLocalOptions
	nftLocalOptions = nft.Options{NetNS: n.path(n.near), VerifyConnect: true, LockFile: filepath.Join(t.TempDir(), "nft.lock")}
	t.Cleanup(func() { nftLocalOptions = saved })
	f.SetSSMManaged(seedInstance)
	var (
		mu      sync.Mutex
		cmds    []string
		changes []remediate.Change
	)
	f.SetCommandRunnerResult(func(id string, commands []string) awstest.CommandResult {
		cmd := strings.Join(commands, "\n")
		mu.Lock()
		cmds = append(cmds, cmd)
		mu.Unlock()
		m := nftPipe.FindStringSubmatch(cmd)
		if m == nil || id != seedInstance {
			return awstest.CommandResult{Status: "Failed", ResponseCode: 127, Stderr: "unexpected command"}
		}
		stdin, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil {
			return awstest.CommandResult{Status: "Failed", Stderr: "base64: " + err.Error()}
		}
		code, out, errOut := runNft(string(stdin), m[2], "-")
		if code != 0 {
			return awstest.CommandResult{Status: "Failed", ResponseCode: code, Stdout: out, Stderr: errOut}
		}
		if m[2] == "apply" {
			var c remediate.Change
			json.Unmarshal([]byte(out), &c)
			mu.Lock()
			changes = append(changes, c)
			mu.Unlock()
		}
		return awstest.CommandResult{Status: "Success", Stdout: out, Stderr: errOut}
	})
	sent = func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), cmds...) }
	applied = func() []remediate.Change {
		mu.Lock()
		defer mu.Unlock()
		return append([]remediate.Change(nil), changes...)
	}
	return sent, applied
}

// TestNftablesThroughSSM is the whole chain with nftables_on =
// "instance": plan, apply, apply again and unblock by hand send
// `nft … -` through the fake's SSM to the instance, whose nftables are a
// network namespace's, and a connect from there to the target is what
// tells whether the block holds.
func TestNftablesThroughSSM(t *testing.T) {
	n := newInstanceNS(t)
	f := blockWorld(t)
	sent, applied := ssmInstance(t, f, n)
	cfgPath := blockConfig(t, f.URL(), "mode = \"block-then-confirm\"\nactions = [\"nftables\"]\nnftables_on = \"instance\"\n")
	const key = "13051177299-1:nftables:" + seedInstance + ":" + seedTarget + "/32:all:443"

	if err := n.dial(); err != nil {
		t.Fatalf("connect before any block: %v, want it to work", err)
	}

	// Plan: the host backend's rules, for the instance, and nothing sent.
	code, out, errOut := runCmd(t, "plan", "--json", "--config", cfgPath, "testdata/seed-notice.eml")
	var plan remediate.Plan
	if code != 0 || json.Unmarshal([]byte(out), &plan) != nil || len(plan.Actions) != 1 {
		t.Fatalf("plan --json: exit %d, stdout %s, stderr %q; want one action", code, out, errOut)
	}
	a := plan.Actions[0]
	if a.Key != key || a.InstanceID != seedInstance || a.Account != "111122223333" || a.Region != "eu-central-1" ||
		a.Resource != "instance:"+seedInstance {
		t.Errorf("planned action = %+v, want %s on instance %s in 111122223333/eu-central-1", a, key, seedInstance)
	}
	calls := strings.Join(a.Calls, "\n")
	for _, want := range []string{
		"add table inet abuse_responder",
		"add rule inet abuse_responder output ip daddr . tcp dport @v4_tcp counter reject with tcp reset",
		`add element inet abuse_responder v4_tcp { 203.0.113.44 . 443 comment "` + key + `" }`,
		`add element inet abuse_responder v4_udp { 203.0.113.44 . 443 comment "` + key + `" }`,
	} {
		if !strings.Contains(calls, want) {
			t.Errorf("plan calls lack %q:\n%s", want, calls)
		}
	}
	if s := sent(); len(s) != 0 {
		t.Errorf("plan sent %d commands, want none: %q", len(s), s)
	}

	// Apply: made on the instance, verified there, and the connect fails at once.
	code, out, errOut = runCmd(t, "apply", "--config", cfgPath, "testdata/seed-notice.eml")
	if code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("apply: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	start := time.Now()
	if err := n.dial(); !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > time.Second {
		t.Fatalf("connect after apply: %v after %v, want ECONNREFUSED at once", err, time.Since(start))
	}
	// The plan, made without asking the instance, wrote the calls the
	// host backend made there on a host without our table.
	if ch := applied(); len(ch) != 1 || !ch[0].Made || ch[0].Key != key || strings.Join(ch[0].Calls, "\n") != calls {
		t.Errorf("nft apply answers = %+v, want one change made for %s with the planned calls", ch, key)
	}

	// Verify through the backend the config wires: it holds.
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newNftSSM(cfg, awsAccounts(cfg))
	if err != nil {
		t.Fatal(err)
	}
	chk, err := b.Verify(context.Background(), a)
	if err != nil || !chk.Holds || !strings.Contains(chk.Detail, "connect to 203.0.113.44:443 refused") {
		t.Errorf("Verify = %+v, %v; want it to hold with the connect refused", chk, err)
	}

	// Apply again, by hand (the engine only verifies what it recorded)
	// and through the backend: nothing changes on the instance.
	if code, out, errOut := runCmd(t, "apply", "--config", cfgPath, "testdata/seed-notice.eml"); code != 0 {
		t.Fatalf("apply again: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	again, err := b.Apply(context.Background(), a, false)
	if err != nil || again.Made || len(again.Calls) != 0 {
		t.Errorf("Apply again = made %t, calls %q, %v; want nothing made", again.Made, again.Calls, err)
	}

	// Unblock: the connect works again.
	code, out, errOut = runCmd(t, "unblock", "--config", cfgPath, "13051177299-1")
	if code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("unblock: exit %d, stdout %s, stderr %q", code, out, errOut)
	}
	if err := n.dial(); err != nil {
		t.Errorf("connect after unblock: %v, want it to work", err)
	}

	s := sent()
	ops := map[string]int{}
	for _, c := range s {
		m := nftPipe.FindStringSubmatch(c)
		if m == nil {
			t.Errorf("command %q does not match %s", c, nftPipe)
			continue
		}
		ops[m[2]]++
	}
	if ops["apply"] != 2 || ops["verify"] < 3 || ops["undo"] != 1 {
		t.Errorf("commands sent: %v, want 2 apply, at least 3 verify, 1 undo", ops)
	}
}

// TestNftCommandRefuses feeds `nft apply -` hostile requests: each is
// refused before nftables is touched, with exit 1 and the reason.
func TestNftCommandRefuses(t *testing.T) {
	saved := nftLocalOptions
	// Were a request let through, the backend would fail to open this
	// namespace rather than touch this host's nftables.
	nftLocalOptions = nft.Options{NetNS: filepath.Join(t.TempDir(), "no-such-netns"), LockFile: filepath.Join(t.TempDir(), "nft.lock")}
	t.Cleanup(func() { nftLocalOptions = saved })
	action := func(kind, target string) string {
		return fmt.Sprintf(`{"action":{"key":"1-1:nftables:i-0a1b2c3d4e5f60718:%s:tcp:443","kind":%q,"reason":"","resource":"instance:i-0a1b2c3d4e5f60718","target":%q,"protocol":"tcp","port":443,"calls":[]},"dry_run":false}`,
			target, kind, target)
	}
	if err := json.Unmarshal([]byte(action("nftables", "203.0.113.44/32")), new(map[string]any)); err != nil {
		t.Fatalf("the valid request is not JSON: %v", err)
	}
	for _, tc := range []struct{ name, stdin, want string }{
		{"unknown field", strings.Replace(action("nftables", "203.0.113.44/32"), `"dry_run"`, `"command":"reboot","dry_run"`, 1), `unknown field "command"`},
		{"every address", action("nftables", "0.0.0.0/0"), "is not one address"},
		{"kind nacl", action("nacl", "203.0.113.44/32"), `kind "nacl" is not "nftables"`},
		{"private", action("nftables", "10.0.0.1/32"), "target refused"},
		{"a /24", action("nftables", "203.0.113.0/24"), "is not one address"},
		{"change for apply", `{"change":{"key":"1-1","kind":"nftables"}}`, "apply takes an action"},
		{"two values", action("nftables", "203.0.113.44/32") + "{}", "more than one JSON value"},
		{"empty", "", "empty"},
		{"oversize", `{"action":{"key":"` + strings.Repeat("1", 20<<10) + `"}}`, "longer than"},
	} {
		code, out, errOut := runNft(tc.stdin, "apply", "-")
		if code != 1 || out != "" || !strings.Contains(errOut, "nft apply: request") || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1 and %q", tc.name, code, out, errOut, tc.want)
		}
	}
	undo := `{"change":{"key":"1-1:nftables:i-0a1b2c3d4e5f60718:203.0.113.44/32:tcp:443","kind":"nftables","made":true,"before":{"table":"filter"},"after":null,"calls":null,"at":"2026-04-14T00:00:00Z"}}`
	if code, _, errOut := runNft(undo, "undo", "-"); code != 1 || !strings.Contains(errOut, `names table "filter"`) {
		t.Errorf("undo in another table: exit %d, stderr %q; want 1 and the table refused", code, errOut)
	}
	for _, args := range [][]string{{"apply"}, {"apply", "request.json"}, {"flush", "-"}, {"apply", "-", "x"}} {
		if code, _, _ := runNft(action("nftables", "203.0.113.44/32"), args...); code != 2 {
			t.Errorf("nft %q: exit %d, want 2", args, code)
		}
	}
}
