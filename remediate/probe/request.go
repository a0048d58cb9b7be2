// Package probe proves an AWS-side block from where the traffic starts:
// after the EC2 backend has read a network ACL entry or a security group
// back, it connects from the implicated instance to the blocked target,
// through SSM Run Command (`abuse-responder probe --json -` there).
//
// The instance's half is Parse and Connect: one strict JSON request on
// stdin, a TCP connect to each target with a timeout, no byte sent, and
// one JSON line of results. The daemon's half is Verifier, a
// remediate.Backend that wraps the EC2 backend and adds the connect's
// outcome to its Check.
package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Bounds on a request. They keep the run on the instance short (every
// target is dialled at once, so a run lasts about one timeout) and the
// command small.
const (
	MaxRequestBytes = 8 << 10
	MaxTargets      = 32
	MaxTimeout      = 10 * time.Second
)

// Target is one address and port to connect to. Protocol must be "tcp":
// a connect proves nothing about udp or icmp, where silence is what an
// open port and a block look like alike.
type Target struct {
	IP       string `json:"ip"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

// Request is what `probe --json -` reads on stdin, e.g.
// {"targets":[{"ip":"203.0.113.5","port":22,"protocol":"tcp"}],"timeout":"3s"}.
type Request struct {
	Targets []Target `json:"targets"`
	// Timeout bounds each connect, as a Go duration ("3s"); at most
	// MaxTimeout.
	Timeout string `json:"timeout"`
}

// Result is the outcome of one connect.
type Result struct {
	IP        string `json:"ip"`
	Port      int    `json:"port"`
	Connected bool   `json:"connected"`
	// Error is why the connect failed, short: "i/o timeout",
	// "connection refused", "network is unreachable".
	Error string `json:"error,omitempty"`
	MS    int64  `json:"ms"`
}

// Answer is what `probe --json -` prints, as one line: a Result per
// target, in the request's order.
type Answer struct {
	Results []Result `json:"results"`
}

// Probe is a checked request.
type Probe struct {
	Targets []netip.AddrPort
	Timeout time.Duration
}

// Parse decodes one request strictly (unknown fields, trailing data and
// oversize input are errors) and checks it. The instance checks what the
// daemon sent and the daemon checks it before sending, with this same
// function.
func Parse(data []byte) (Probe, error) {
	if len(data) > MaxRequestBytes {
		return Probe{}, fmt.Errorf("request: longer than %d bytes", MaxRequestBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return Probe{}, errors.New("request: empty; want one JSON object")
	}
	var r Request
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Probe{}, fmt.Errorf("request: %w", err)
	}
	if dec.More() {
		return Probe{}, errors.New("request: more than one JSON value")
	}
	return r.Check()
}

// Check validates r: 1 to MaxTargets targets, each a plain unicast
// address, a port from 1 to 65535 and protocol tcp; a timeout above zero
// and at most MaxTimeout.
func (r Request) Check() (Probe, error) {
	if len(r.Targets) == 0 || len(r.Targets) > MaxTargets {
		return Probe{}, fmt.Errorf("request: %d targets, want 1 to %d", len(r.Targets), MaxTargets)
	}
	var p Probe
	for i, t := range r.Targets {
		ip, err := netip.ParseAddr(t.IP)
		if err != nil {
			return Probe{}, fmt.Errorf("request: target %d: %w", i, err)
		}
		// ::ffff:0.0.0.0 is 0.0.0.0 to the kernel.
		ip = ip.Unmap()
		// Only somewhere a connect can go: not "any", not a group, no
		// interface zone chosen by the sender.
		if ip.IsUnspecified() || ip.IsMulticast() || ip.Zone() != "" || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return Probe{}, fmt.Errorf("request: target %d: %s is not a unicast address", i, t.IP)
		}
		if t.Port < 1 || t.Port > 65535 {
			return Probe{}, fmt.Errorf("request: target %d: port %d is not 1 to 65535", i, t.Port)
		}
		if t.Protocol != "tcp" {
			return Probe{}, fmt.Errorf("request: target %d: protocol %q is not \"tcp\": only a TCP connect can show a block", i, t.Protocol)
		}
		p.Targets = append(p.Targets, netip.AddrPortFrom(ip, uint16(t.Port)))
	}
	d, err := time.ParseDuration(r.Timeout)
	if err != nil {
		return Probe{}, fmt.Errorf("request: timeout: %w", err)
	}
	if d <= 0 || d > MaxTimeout {
		return Probe{}, fmt.Errorf("request: timeout %s is not above 0 and at most %s", d, MaxTimeout)
	}
	p.Timeout = d
	return p, nil
}

// RequestFor is the request that connects to each of targets with
// timeout.
func RequestFor(timeout time.Duration, targets ...netip.AddrPort) Request {
	r := Request{Timeout: timeout.String()}
	for _, t := range targets {
		r.Targets = append(r.Targets, Target{IP: t.Addr().String(), Port: int(t.Port()), Protocol: "tcp"})
	}
	return r
}

// Connect dials every target of p at once over TCP, each bounded by
// p.Timeout, and closes each connection made without sending anything.
func Connect(ctx context.Context, p Probe) Answer {
	out := Answer{Results: make([]Result, len(p.Targets))}
	var wg sync.WaitGroup
	for i, t := range p.Targets {
		wg.Go(func() {
			out.Results[i] = dial(ctx, t, p.Timeout)
		})
	}
	wg.Wait()
	return out
}

// dial connects to t and closes the connection at once.
func dial(ctx context.Context, t netip.AddrPort, timeout time.Duration) Result {
	r := Result{IP: t.Addr().String(), Port: int(t.Port())}
	d := net.Dialer{Timeout: timeout}
	start := time.Now()
	conn, err := d.DialContext(ctx, "tcp", t.String())
	r.MS = time.Since(start).Milliseconds()
	if err != nil {
		r.Error = shortError(err)
		return r
	}
	r.Connected = true
	// A close error after a connect changes nothing about the answer.
	_ = conn.Close()
	return r
}

// shortError is the cause of a dial error without the "dial tcp
// 203.0.113.5:22: connect:" around it, so that the daemon can quote it.
func shortError(err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "i/o timeout"
	case errors.As(err, &errno):
		return errno.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// String is r in a sentence, for the command's text output.
func (r Result) String() string {
	addr := net.JoinHostPort(r.IP, strconv.Itoa(r.Port))
	if r.Connected {
		return fmt.Sprintf("connect to %s succeeded in %d ms", addr, r.MS)
	}
	return fmt.Sprintf("connect to %s failed in %d ms: %s", addr, r.MS, r.Error)
}
