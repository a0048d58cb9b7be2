// Package nft blocks abuse on the host itself with nftables: a reject
// rule in our own table, inet abuse_responder, so that a connect from
// this host to a blocked target fails at once.
//
// The layout is fixed, so that Apply, Verify and Undo can find every
// part by name, whatever the rule handles are:
//
//	table inet abuse_responder {
//		set v4_all { type ipv4_addr; flags interval,timeout; }
//		set v4_tcp { type ipv4_addr . inet_service; flags interval,timeout; }
//		set v4_udp { type ipv4_addr . inet_service; flags interval,timeout; }
//		set v6_all, v6_tcp, v6_udp: the same for ipv6_addr
//		chain output {
//			type filter hook output priority filter; policy accept;
//			ip daddr @v4_all counter reject with icmpx admin-prohibited
//			ip daddr . tcp dport @v4_tcp counter reject with tcp reset
//			ip daddr . udp dport @v4_udp counter reject with icmpx admin-prohibited
//			(and the three ip6 rules)
//		}
//	}
//
// A block is an element of one set (two for a port without a protocol:
// tcp and udp). Concatenated sets keep the rules fixed however many ports
// are blocked; a per-port set would add a set and a rule per port, each
// of them to create, verify and garbage-collect. Each element carries the
// action's key as its comment, which is how Undo knows the element is
// this action's to remove, even after a restart or a re-apply.
//
// Every change is one netlink batch, which the kernel applies atomically.
// Other tables are never read for change, touched or flushed.
package nft

import (
	"errors"
	"fmt"
	"os"
	"regexp"

	"github.com/google/nftables"

	"github.com/abuse-responder/abuse-responder/remediate"
)

// DefaultTable is the table name used when Options.Table is empty.
const DefaultTable = "abuse_responder"

// DefaultLockFile is the lock file used when Options.LockFile is empty.
const DefaultLockFile = "/run/lock/abuse-responder-nft.lock"

// Options configures a Backend.
type Options struct {
	// NetNS is a network namespace path such as /run/netns/NAME, or ""
	// for the namespace of the process.
	NetNS string
	// Table is the name of our inet table; DefaultTable when empty.
	Table string
	// VerifyConnect makes Verify also dial target:port over TCP for TCP
	// blocks with a port, and require the connect to be refused. The dial
	// never leaves the host: our rule rejects it in the output hook.
	VerifyConnect bool
	// LockFile serialises changes between processes (the daemon and an
	// `unblock` run by hand) with flock(2); DefaultLockFile when empty.
	// Its directory is created if missing.
	LockFile string
}

// Backend implements remediate.Backend for remediate.KindNftables. It is
// safe for concurrent use. Close releases the namespace.
type Backend struct {
	table   string
	netns   *os.File // nil for the process's own namespace
	connect bool
	lock    *lock
}

var _ remediate.Backend = (*Backend)(nil)

// tableName is what nft accepts as an identifier, kept short.
var tableName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// New returns a Backend for opts. It opens the namespace, if any, and
// keeps it open until Close; it does not touch nftables.
func New(opts Options) (*Backend, error) {
	b := &Backend{table: opts.Table, connect: opts.VerifyConnect}
	if b.table == "" {
		b.table = DefaultTable
	}
	if !tableName.MatchString(b.table) {
		return nil, fmt.Errorf("nft: table name %q: want a letter then letters, digits or _", b.table)
	}
	lockPath := opts.LockFile
	if lockPath == "" {
		lockPath = DefaultLockFile
	}
	b.lock = newLock(lockPath)
	if opts.NetNS != "" {
		f, err := os.Open(opts.NetNS)
		if err != nil {
			return nil, fmt.Errorf("nft: open network namespace: %w", err)
		}
		b.netns = f
	}
	return b, nil
}

// Close releases the network namespace. The Backend must not be used
// afterwards.
func (b *Backend) Close() error {
	if b.netns == nil {
		return nil
	}
	if err := b.netns.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("nft: close network namespace: %w", err)
	}
	return nil
}

// Kinds returns remediate.KindNftables.
func (b *Backend) Kinds() []remediate.Kind {
	return []remediate.Kind{remediate.KindNftables}
}

// conn returns a fresh connection for one operation. A Conn buffers the
// messages of a batch, so sharing one between goroutines would mix
// their batches.
func (b *Backend) conn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if b.netns != nil {
		opts = append(opts, nftables.WithNetNSFd(int(b.netns.Fd())))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nft: connect to netlink: %w", err)
	}
	return c, nil
}
