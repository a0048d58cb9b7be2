package host

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseListeners(t *testing.T) {
	data, err := os.ReadFile("testdata/tcp")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseSockets(data, scanStates)
	if err != nil {
		t.Fatalf("parseSockets: %v", err)
	}
	want := []string{
		"LISTEN 0.0.0.0:3128 inode 21844",
		"LISTEN 127.0.0.1:8080 inode 21850",
		"LISTEN 10.16.32.9:111 inode 15012",
		"ESTABLISHED 10.16.32.9:3128 → 192.0.2.15:54321 inode 22001",
		// TIME_WAIT (06) is neither a listener nor a live connection.
	}
	var lines []string
	for _, s := range got {
		if s.state == "LISTEN" {
			lines = append(lines, fmt.Sprintf("%s %s inode %d", s.state, s.local, s.inode))
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s → %s inode %d", s.state, s.local, s.remote, s.inode))
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("parseSockets(testdata/tcp) =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// parseNetTCP keeps what it always kept: connections only.
	conns, _ := parseNetTCP(data)
	if len(conns) != 1 || conns[0].state != "ESTABLISHED" {
		t.Errorf("parseNetTCP(testdata/tcp) = %+v, want the one ESTABLISHED socket", conns)
	}
}

// TestCollectListenFixture runs Collect on a copied socket table and a
// made-up process: squid holding the 0.0.0.0:3128 listener, and an
// unowned rpcbind-like listener on 10.16.32.9:111.
func TestCollectListenFixture(t *testing.T) {
	root := t.TempDir()
	data, err := os.ReadFile("testdata/tcp")
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "net"), 0o755))
	must(os.WriteFile(filepath.Join(root, "net", "tcp"), data, 0o644))
	must(os.WriteFile(filepath.Join(root, "net", "tcp6"), []byte("  sl  local_address remote_address st\n"), 0o644))
	pid := filepath.Join(root, "812")
	must(os.MkdirAll(filepath.Join(pid, "fd"), 0o755))
	must(os.WriteFile(filepath.Join(pid, "comm"), []byte("squid\n"), 0o644))
	must(os.WriteFile(filepath.Join(pid, "cmdline"), []byte("/usr/sbin/squid\x00-N\x00"), 0o644))
	must(os.Symlink("/usr/sbin/squid", filepath.Join(pid, "exe")))
	must(os.Symlink("socket:[21844]", filepath.Join(pid, "fd", "5")))
	must(os.Symlink("socket:[21850]", filepath.Join(pid, "fd", "6")))
	must(os.Symlink("/dev/null", filepath.Join(pid, "fd", "0")))

	collect := func(o Options) Result {
		t.Helper()
		o.From, o.To, o.ProcRoot, o.CronPaths, o.UnitDirs = winFrom, winTo, root, []string{}, []string{}
		res, err := Collect(context.Background(), o)
		if err != nil {
			t.Fatalf("Collect: %v", err)
		}
		return res
	}

	res := collect(Options{OwnPorts: []uint16{3128, 8080, 111}})
	want := []string{ // sorted by kind, then path
		"socket " + filepath.Join(root, "net") + " pid=0 listen=10.16.32.9:111: LISTEN 10.16.32.9:111 (no process found): reachable from other hosts on that address, a port the report names",
		"socket /usr/sbin/squid pid=812 listen=0.0.0.0:3128: LISTEN 0.0.0.0:3128 by pid 812 (/usr/sbin/squid -N): reachable from anywhere, a port the report names",
		// 127.0.0.1:8080 is not reachable from other hosts: not reported.
		"process /usr/sbin/squid pid=812 listen=0.0.0.0:3128: pid 812 (/usr/sbin/squid -N): the proxy software squid listening on 0.0.0.0:3128 (reachable from anywhere)",
	}
	var got []string
	for _, f := range res.Findings {
		got = append(got, fmt.Sprintf("%s %s pid=%d listen=%s: %s", f.Kind, f.Path, f.PID, f.Listen, f.Reason))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		dump(t, res)
		t.Errorf("findings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Guessed ports say so; without OwnPorts only the proxy rule speaks.
	res = collect(Options{OwnPorts: []uint16{3128}, OwnPortsGuessed: true})
	if len(res.Findings) != 2 || !strings.HasSuffix(res.Findings[0].Reason, "reachable from anywhere, a common proxy port") {
		dump(t, res)
		t.Errorf("with guessed ports: want the 3128 listener as a common proxy port, and the squid process")
	}
	res = collect(Options{})
	if len(res.Findings) != 1 || res.Findings[0].Kind != KindProcess || res.Findings[0].Listen != "0.0.0.0:3128" {
		dump(t, res)
		t.Errorf("without OwnPorts: want only the squid process finding")
	}
}

// TestCollectRealListener finds this test's own listener on the wildcard
// address in the real /proc, and not one on loopback.
func TestCollectRealListener(t *testing.T) {
	open, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	local, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	openPort := uint16(open.Addr().(*net.TCPAddr).Port)
	localPort := uint16(local.Addr().(*net.TCPAddr).Port)

	res, err := Collect(context.Background(), Options{
		From: winFrom, To: winTo,
		OwnPorts:  []uint16{openPort, localPort},
		ProcRoot:  "/proc",
		CronPaths: []string{},
		UnitDirs:  []string{},
	})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	exe, _ := os.Executable()
	bound := fmt.Sprintf("0.0.0.0:%d", openPort)
	want := fmt.Sprintf("LISTEN %s by pid %d (", bound, os.Getpid())
	found := 0
	for _, f := range res.Findings {
		if f.Kind != KindSocket {
			continue
		}
		if strings.HasSuffix(f.Listen, fmt.Sprintf(":%d", localPort)) {
			t.Errorf("finding %+v: a loopback listener is not reachable from other hosts", f)
		}
		if f.Listen != bound || f.PID != os.Getpid() {
			continue // another process's listener on the same port number, in another namespace
		}
		found++
		if !strings.HasPrefix(f.Reason, want) || !strings.HasSuffix(f.Reason, "reachable from anywhere, a port the report names") {
			t.Errorf("listener finding reason %q, want %q… reachable from anywhere, a port the report names", f.Reason, want)
		}
		if f.Path != exe {
			t.Errorf("listener finding path %q, want this test's executable %q", f.Path, exe)
		}
	}
	if found != 1 {
		dump(t, res)
		t.Errorf("Collect found %d findings for %s by pid %d, want 1", found, bound, os.Getpid())
	}
}

// TestCollectRealProxyProcess builds a small listener named tinyproxy,
// runs it, and finds it by the proxy-software rule, whatever its port.
func TestCollectRealProxyProcess(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the helper:", err)
	}
	bin := filepath.Join(t.TempDir(), "tinyproxy")
	build := exec.Command(gobin, "build", "-o", bin, "testdata/main.go")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build testdata/main.go: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe() // closing it ends the helper
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	// The helper prints its port once it listens.
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	var port int
	select {
	case s := <-line:
		if port, err = strconv.Atoi(s); err != nil {
			t.Fatalf("helper printed %q, want its port", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the helper never said its port")
	}

	res, err := Collect(context.Background(), Options{From: winFrom, To: winTo, CronPaths: []string{}, UnitDirs: []string{}})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	bound := fmt.Sprintf("0.0.0.0:%d", port)
	for _, f := range res.Findings {
		if f.Kind != KindProcess || f.PID != cmd.Process.Pid {
			continue
		}
		if f.Path != bin || f.Listen != bound ||
			!strings.Contains(f.Reason, "the proxy software tinyproxy listening on "+bound+" (reachable from anywhere)") {
			t.Errorf("process finding %+v, want path %s, listen %s and tinyproxy named", f, bin, bound)
		}
		return
	}
	dump(t, res)
	t.Errorf("Collect found no process finding for tinyproxy (pid %d)", cmd.Process.Pid)
}
