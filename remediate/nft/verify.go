package nft

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/abuse-responder/abuse-responder/remediate"
)

// dialTimeout bounds the connect check. Our reject answers in well under
// a millisecond; a connect still pending after this means something
// else, such as a drop, caught the packet first.
const dialTimeout = time.Second

// Verify reads our table back: the chain on the output hook, each set of
// the block with its rule, and the element (or a wider one holding it).
// With Options.VerifyConnect, a TCP block with a port is also proven by
// a connect to the target from the namespace, which must be refused at
// once; the error and the time it took are in Detail.
func (b *Backend) Verify(ctx context.Context, a remediate.Action) (remediate.Check, error) {
	chk := remediate.Check{Key: a.Key}
	blk, err := blockOf(a.Target, a.Protocol, a.Port)
	if err != nil {
		return chk, fmt.Errorf("nft: verify %s: %w", a.Key, err)
	}
	if err := ctx.Err(); err != nil {
		return chk, fmt.Errorf("nft: verify %s: %w", a.Key, err)
	}
	c, err := b.conn()
	if err != nil {
		return chk, err
	}
	rs, err := read(c, b.table)
	if err != nil {
		return chk, err
	}
	facts, ok := b.readBack(rs, blk)
	if ok && b.connect && (blk.proto == "tcp" || blk.proto == "") && blk.port != 0 {
		fact, refused := b.connectCheck(ctx, blk)
		facts = append(facts, fact)
		ok = refused
	}
	chk.Holds = ok
	chk.Detail = strings.Join(facts, "; ")
	return chk, nil
}

// readBack lists what of blk's part of the table is there, and whether
// all of it is.
func (b *Backend) readBack(rs *ruleset, blk block) ([]string, bool) {
	switch {
	case rs.table == nil:
		return []string{fmt.Sprintf("table inet %s missing", b.table)}, false
	case rs.chain == nil:
		return []string{fmt.Sprintf("chain inet %s %s missing", b.table, chainName)}, false
	case !rs.chainOK:
		return []string{fmt.Sprintf("chain inet %s %s is not a filter chain on the output hook", b.table, chainName)}, false
	}
	var facts []string
	ok := true
	for _, s := range blk.sets() {
		sp := blk.spanOf(s)
		if rs.sets[s.name()] == nil {
			facts = append(facts, fmt.Sprintf("set %s missing", s.name()))
			ok = false
			continue
		}
		if !rs.hasRule(s) {
			facts = append(facts, fmt.Sprintf("rule %q missing", s.ruleText()))
			ok = false
		}
		m := rs.lookup(s, sp)
		switch {
		case m.exact != nil:
			facts = append(facts, fmt.Sprintf("element %s in %s present%s", sp.text(s), s.name(), expiresText(m.exact.expires)))
		case m.covered != nil:
			facts = append(facts, fmt.Sprintf("element %s in %s held by %s%s", sp.text(s), s.name(), m.covered.span.text(s), expiresText(m.covered.expires)))
		default:
			facts = append(facts, fmt.Sprintf("element %s in %s missing", sp.text(s), s.name()))
			ok = false
		}
	}
	return facts, ok
}

func expiresText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return ", expires in " + d.Round(time.Second).String()
}

// connectCheck dials the target's port and reports whether our reject
// answered: ECONNREFUSED from the TCP reset, or EHOSTUNREACH from the
// ICMP reject of a wider all-protocol block.
func (b *Backend) connectCheck(ctx context.Context, blk block) (string, bool) {
	addr := netip.AddrPortFrom(blk.prefix.Addr(), blk.port).String()
	start := time.Now()
	err := dialIn(ctx, b.netns, addr, dialTimeout)
	ms := time.Since(start).Milliseconds()
	switch {
	case err == nil:
		return fmt.Sprintf("connect to %s succeeded in %d ms: not blocked", addr, ms), false
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("connect to %s refused in %d ms", addr, ms), true
	case errors.Is(err, syscall.EHOSTUNREACH):
		return fmt.Sprintf("connect to %s unreachable (rejected) in %d ms", addr, ms), true
	default:
		return fmt.Sprintf("connect to %s failed in %d ms, not by our reject: %v", addr, ms, err), false
	}
}

// dialIn connects over TCP to addr from the network namespace ns (nil
// for the process's own) and closes the connection. The socket is made
// on a thread moved into ns; the thread is never moved back but ends
// with its goroutine, since a locked thread that exits locked is
// discarded by the runtime. So no other goroutine ever runs in ns.
func dialIn(ctx context.Context, ns *os.File, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := func() error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	if ns == nil {
		return dial()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: see above
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		done <- dial()
	}()
	return <-done
}
