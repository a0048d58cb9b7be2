package daemon

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notifier speaks systemd's sd_notify protocol: a datagram to the socket in
// $NOTIFY_SOCKET. Without that variable (not under systemd, or in tests)
// every call is a no-op. Fifty lines instead of a library.
type Notifier struct {
	socket string
}

// NewNotifier reads the socket path from getenv; an "@" prefix means an
// abstract socket.
func NewNotifier(getenv func(string) string) *Notifier {
	return &Notifier{socket: getenv("NOTIFY_SOCKET")}
}

// Notify sends one state line such as "READY=1"; it reports no error when
// systemd is not listening, since the daemon works the same without it.
func (n *Notifier) Notify(state string) error {
	if n == nil || n.socket == "" {
		return nil
	}
	name := n.socket
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// WatchdogInterval returns half of $WATCHDOG_USEC (systemd's advice), or 0
// when no watchdog is set for this process.
func WatchdogInterval(getenv func(string) string) time.Duration {
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}
