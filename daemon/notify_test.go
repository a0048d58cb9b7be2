package daemon

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestNotifier sends to a unixgram socket standing in for systemd's.
func TestNotifier(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := NewNotifier(func(k string) string {
		if k == "NOTIFY_SOCKET" {
			return path
		}
		return ""
	})
	for _, state := range []string{"READY=1", "WATCHDOG=1", "STOPPING=1"} {
		if err := n.Notify(state); err != nil {
			t.Fatalf("Notify(%s): %v", state, err)
		}
		buf := make([]byte, 64)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := conn.Read(buf)
		if err != nil || string(buf[:k]) != state {
			t.Fatalf("socket got %q, %v; want %q", buf[:k], err, state)
		}
	}
	if err := NewNotifier(func(string) string { return "" }).Notify("READY=1"); err != nil {
		t.Errorf("Notify without NOTIFY_SOCKET: %v, want a no-op", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	env := map[string]string{"WATCHDOG_USEC": "120000000"}
	if got := WatchdogInterval(func(k string) string { return env[k] }); got != time.Minute {
		t.Errorf("WatchdogInterval = %v, want half of 120s", got)
	}
	env["WATCHDOG_PID"] = "1"
	if got := WatchdogInterval(func(k string) string { return env[k] }); got != 0 {
		t.Errorf("WatchdogInterval for another pid = %v, want 0", got)
	}
}
