package host

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseNetTCP6(t *testing.T) {
	data, err := os.ReadFile("testdata/tcp6")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseNetTCP(data)
	if err != nil {
		t.Fatalf("parseNetTCP: %v", err)
	}
	want := []string{
		"ESTABLISHED [::1]:50231 → [::1]:46242 inode 1789390",
		"ESTABLISHED 127.0.0.1:51241 → 127.0.0.1:39722 inode 1789394", // IPv4-mapped, unmapped
		"ESTABLISHED [::1]:46242 → [::1]:50231 inode 1789389",
		"ESTABLISHED [2001:db8::c000:64]:54000 → [2001:db8::5]:443 inode 1790001",
		"SYN_SENT [2001:db8::c000:64]:54002 → [2001:db8::5]:80 inode 1790002",
	}
	var lines []string
	for _, s := range got {
		lines = append(lines, fmt.Sprintf("%s %s → %s inode %d", s.state, s.local, s.remote, s.inode))
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("parseNetTCP(testdata/tcp6) =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseHexAddrPort(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0100007F:1F90", "127.0.0.1:8080"},
		{"2C7100CB:01BB", "203.0.113.44:443"},
		{"B80D0120000000000000000005000000:0050", "[2001:db8::5]:80"},
		{"0000000000000000FFFF00002C7100CB:0016", "203.0.113.44:22"},
	} {
		got, err := parseHexAddrPort(tc.in)
		if err != nil || got.String() != tc.want {
			t.Errorf("parseHexAddrPort(%s) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"0100007F", "01000:1F90", "0100007F:XYZ1", "zz00007F:0050"} {
		if _, err := parseHexAddrPort(bad); err == nil {
			t.Errorf("parseHexAddrPort(%s) = nil error, want one", bad)
		}
	}
}

// TestCollectRealSocket finds this test's own connection in the real /proc.
func TestCollectRealSocket(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c) // hold the connection until the client closes
			c.Close()
		}
	}()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)

	res, err := Collect(context.Background(), Options{
		From: winFrom, To: winTo,
		Targets:     addrs("127.0.0.1"),
		TargetPorts: []uint16{port},
		ProcRoot:    "/proc",
		CronPaths:   []string{},
		UnitDirs:    []string{},
	})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	want := fmt.Sprintf("ESTABLISHED %s → 127.0.0.1:%d by pid %d", netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), port, os.Getpid())
	n := 0
	for _, f := range res.Findings {
		if f.Kind != KindSocket {
			continue
		}
		n++
		if f.PID != os.Getpid() || !strings.HasPrefix(f.Reason, want) {
			t.Errorf("socket finding %+v, want pid %d and reason %q…", f, os.Getpid(), want)
		}
		if exe, _ := os.Executable(); f.Path != exe {
			t.Errorf("socket finding path %q, want this test's executable %q", f.Path, exe)
		}
	}
	if n != 1 { // the accepted end's remote port is the client's, not the target port
		dump(t, res)
		t.Errorf("Collect found %d socket findings, want 1", n)
	}
}

// TestCollectRealProcess runs a copy of sleep named xmrig.
func TestCollectRealProcess(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary:", err)
	}
	bin := filepath.Join(t.TempDir(), "xmrig")
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// The child's comm is "xmrig" once exec is done; wait for it.
	comm := fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if b, _ := os.ReadFile(comm); strings.TrimSpace(string(b)) == "xmrig" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became xmrig", comm)
		}
		time.Sleep(10 * time.Millisecond)
	}

	res, err := Collect(context.Background(), Options{From: winFrom, To: winTo, CronPaths: []string{}, UnitDirs: []string{}})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	for _, f := range res.Findings {
		if f.Kind == KindProcess && f.PID == cmd.Process.Pid {
			if f.Path != bin || !strings.Contains(f.Reason, "named like the coin miner xmrig") {
				t.Errorf("process finding %+v, want path %s and the miner named", f, bin)
			}
			return
		}
	}
	dump(t, res)
	t.Errorf("Collect found no process finding for pid %d", cmd.Process.Pid)
}
