package nft

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireRoot skips a test that needs root (network namespaces, real
// nftables) unless CI is set, where it fails: CI runs as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but the test is not root: it needs root to create network namespaces and nftables rules")
		}
		t.Skip("needs root to create network namespaces and nftables rules (CI runs it as root)")
	}
	need(t, "ip", "iproute2")
}

// need skips without the command, or fails under CI.
func need(t *testing.T, cmd, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(cmd); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but %s is missing: install %s", cmd, pkg)
		}
		t.Skipf("needs %s (apt-get install %s)", cmd, pkg)
	}
}

// lab is two network namespaces joined by a veth pair: near, where the
// backend works, and far, with TCP listeners on every address.
type lab struct {
	near, far         string // namespace names
	nearNS            *os.File
	far4, far4b, far6 netip.Addr
	port, port2       uint16 // listened on in far, on every address
}

var labSeq atomic.Int32

// newLab builds a lab; t.Cleanup removes it, also when the test fails.
func newLab(t *testing.T) *lab {
	t.Helper()
	requireRoot(t)
	id := fmt.Sprintf("%d%d", os.Getpid()%100000, labSeq.Add(1))
	l := &lab{
		near: "nftn" + id, far: "nftf" + id,
		far4:  netip.MustParseAddr("198.51.100.7"),
		far4b: netip.MustParseAddr("198.51.100.8"),
		far6:  netip.MustParseAddr("2001:db8::7"),
	}
	for _, ns := range []string{l.near, l.far} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	vn, vf := "vn"+id, "vf"+id
	// Made inside near and moved straight to far: the host's namespace
	// never sees the veth.
	run(t, "ip", "-n", l.near, "link", "add", vn, "type", "veth", "peer", "name", vf, "netns", l.far)
	run(t, "ip", "-n", l.near, "addr", "add", "198.51.100.1/24", "dev", vn)
	run(t, "ip", "-n", l.near, "addr", "add", "2001:db8::1/64", "dev", vn, "nodad")
	run(t, "ip", "-n", l.far, "addr", "add", "198.51.100.7/24", "dev", vf)
	run(t, "ip", "-n", l.far, "addr", "add", "198.51.100.8/24", "dev", vf)
	run(t, "ip", "-n", l.far, "addr", "add", "2001:db8::7/64", "dev", vf, "nodad")
	for _, x := range [][2]string{{l.near, vn}, {l.far, vf}, {l.near, "lo"}, {l.far, "lo"}} {
		run(t, "ip", "-n", x[0], "link", "set", x[1], "up")
	}
	// The carrier comes up a moment later; a first neighbour
	// solicitation sent before it is lost and retried only after a second.
	waitUp(t, l.near, vn)
	waitUp(t, l.far, vf)
	f, err := os.Open(l.nsPath(l.near))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	l.nearNS = f
	l.port = listenIn(t, l.nsPath(l.far))
	l.port2 = listenIn(t, l.nsPath(l.far))
	return l
}

func (l *lab) nsPath(name string) string { return filepath.Join("/run/netns", name) }

// backend is a Backend in near, with its own lock file.
func (l *lab) backend(t *testing.T) *Backend {
	t.Helper()
	b, err := New(Options{NetNS: l.nsPath(l.near), VerifyConnect: true, LockFile: filepath.Join(t.TempDir(), "nft.lock")})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// dial connects from near to addr:port.
func (l *lab) dial(addr netip.Addr, port uint16) error {
	return dialIn(context.Background(), l.nearNS, netip.AddrPortFrom(addr, port).String(), 3*time.Second)
}

// mustConnect fails unless a connect from near to addr:port works.
func (l *lab) mustConnect(t *testing.T, addr netip.Addr, port uint16) {
	t.Helper()
	if err := l.dial(addr, port); err != nil {
		t.Fatalf("connect to %s port %d: %v, want it to work", addr, port, err)
	}
}

// mustFail fails unless a connect from near to addr:port fails with want.
func (l *lab) mustFail(t *testing.T, addr netip.Addr, port uint16, want error) {
	t.Helper()
	start := time.Now()
	err := l.dial(addr, port)
	if !errors.Is(err, want) {
		t.Fatalf("connect to %s port %d: %v after %v, want %v", addr, port, err, time.Since(start), want)
	}
}

// nft runs the nft CLI in namespace ns.
func (l *lab) nft(t *testing.T, ns string, args ...string) (string, error) {
	t.Helper()
	need(t, "nft", "nftables")
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...).CombinedOutput()
	return string(out), err
}

// mustNft runs the nft CLI in ns and fails on error.
func (l *lab) mustNft(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := l.nft(t, ns, args...)
	if err != nil {
		t.Fatalf("nft %s in %s: %v\n%s", strings.Join(args, " "), ns, err, out)
	}
	return out
}

var expires = regexp.MustCompile(` expires [0-9a-z]+`)

// listTable is `nft -a -s list table inet NAME` (handles, no counters)
// without the expiry times, which change by the second.
func (l *lab) listTable(t *testing.T, ns, name string) string {
	t.Helper()
	return expires.ReplaceAllString(l.mustNft(t, ns, "-a", "-s", "list", "table", "inet", name), "")
}

// hasTable reports whether table inet name exists in ns.
func (l *lab) hasTable(t *testing.T, ns, name string) bool {
	t.Helper()
	return strings.Contains(l.mustNft(t, ns, "list", "tables"), "table inet "+name+"\n")
}

// waitUp waits until link dev in namespace ns is up with a carrier.
func waitUp(t *testing.T, ns, dev string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "dev", dev).CombinedOutput()
		if err == nil && strings.Contains(string(out), "state UP") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("link %s in %s not up after 5 s: %s %v", dev, ns, out, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// run runs a command and fails the test on error.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// listenIn listens on every address of namespace ns on a free port,
// accepting and closing connections until the test ends. The listener
// socket is made on a thread moved into ns, which is then discarded.
func listenIn(t *testing.T, ns string) uint16 {
	t.Helper()
	f, err := os.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		ln, err := net.Listen("tcp", ":0")
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen in %s: %v", ns, r.err)
	}
	t.Cleanup(func() { _ = r.ln.Close() })
	go func() {
		for {
			c, err := r.ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return uint16(r.ln.Addr().(*net.TCPAddr).Port)
}

// handles matches the "# handle N" comments of `nft -a`.
var handles = regexp.MustCompile(` # handle [0-9]+`)

// runShell runs cmd with stdin.
func runShell(cmd, stdin string) (string, error) {
	c := exec.Command("sh", "-c", cmd)
	c.Stdin = strings.NewReader(stdin)
	out, err := c.CombinedOutput()
	return string(out), err
}
