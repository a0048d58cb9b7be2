// Package awstest holds the AWS test doubles shared by the packages that
// call AWS: a moto_server started per test binary or per test, an EC2 fake
// of our own for what moto lacks (filters, faults, pagination, STS
// assume-role), and helpers that point the real aws-sdk-go-v2 clients at
// either of them.
package awstest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Moto is a running moto_server on 127.0.0.1.
type Moto struct {
	url    string
	cmd    *exec.Cmd
	output *lockedBuffer
	done   chan struct{} // closed when the process has exited
}

// URL is the endpoint to give the SDK clients, e.g. "http://127.0.0.1:40123".
func (m *Moto) URL() string { return m.url }

// Reset wipes moto's state (every service, every region), so that the next
// test starts from an empty account.
func (m *Moto) Reset(t testing.TB) {
	t.Helper()
	resp, err := http.Post(m.url+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("reset moto: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset moto: HTTP %d", resp.StatusCode)
	}
}

// StartMoto starts a moto_server of its own for this test and stops it in
// t.Cleanup. Without moto_server on PATH the test is skipped, unless the
// environment variable CI is set: CI images ship moto, so its absence
// there is a failure.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	requireMoto(t)
	m, err := startMoto()
	if err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	t.Cleanup(m.stop)
	return m
}

var shared struct {
	mu   sync.Mutex
	moto *Moto
	err  error
}

// SharedMoto returns the test binary's moto_server, starting it on first
// use, and resets its state for this test. Start-up costs about a second,
// so packages with several moto tests share one; call StopSharedMoto from
// TestMain after m.Run. Tests that use it must not run in parallel with
// each other, since they share one account.
func SharedMoto(t testing.TB) *Moto {
	t.Helper()
	requireMoto(t)
	shared.mu.Lock()
	if shared.moto == nil && shared.err == nil {
		shared.moto, shared.err = startMoto()
	}
	m, err := shared.moto, shared.err
	shared.mu.Unlock()
	if err != nil {
		t.Fatalf("start shared moto_server: %v", err)
	}
	m.Reset(t)
	return m
}

// StopSharedMoto stops the moto_server started by SharedMoto, if any.
// It is meant for TestMain, after m.Run.
func StopSharedMoto() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.moto != nil {
		shared.moto.stop()
		shared.moto = nil
	}
}

// requireMoto skips (or, under CI, fails) the test when moto_server is
// not installed.
func requireMoto(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("moto_server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("moto_server is not on PATH, and CI is set: the CI image must provide it (pip install 'moto[server]')")
		}
		t.Skip("moto_server is not on PATH: skipping the test against the AWS emulator (pip install 'moto[server]' to run it)")
	}
}

func startMoto() (*Moto, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	out := &lockedBuffer{}
	cmd := exec.Command("moto_server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: a test binary killed by a timeout must not leave moto
	// running. Setpgid lets stop end moto and any child it forked.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run moto_server: %w", err)
	}
	m := &Moto{url: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, output: out, done: make(chan struct{})}
	go func() { cmd.Wait(); close(m.done) }()
	if err := m.waitReady(30 * time.Second); err != nil {
		m.stop()
		return nil, fmt.Errorf("%w; output:\n%s", err, out.String())
	}
	return m, nil
}

// waitReady polls moto until it answers HTTP or the process dies.
func (m *Moto) waitReady(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.url+"/moto-api/data.json", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-m.done:
			return fmt.Errorf("moto_server exited before answering on %s", m.url)
		case <-ctx.Done():
			return fmt.Errorf("moto_server did not answer on %s within %v", m.url, limit)
		case <-tick.C:
		}
	}
}

// stop kills moto's process group and waits for the process to exit.
func (m *Moto) stop() {
	select {
	case <-m.done:
		return // already gone: its group id may belong to someone else now
	default:
	}
	if m.cmd.Process != nil {
		syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-m.done
}

// freePort asks the kernel for a free loopback port. moto binds it a
// moment later; another process could take it in between, which would
// make start-up fail loudly rather than test the wrong server.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects moto's output for error messages; the process
// writes to it from exec's copying goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
