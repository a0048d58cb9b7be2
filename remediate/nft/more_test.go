package nft

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/remediate"
)

// Two cases block the same target: the second finds it blocked (Made
// false) and its Undo leaves the first case's element alone.
func TestSharedTarget(t *testing.T) {
	l := newLab(t)
	b := l.backend(t)
	target := abuse.Target{IP: l.far4, Port: l.port, Protocol: "tcp"}
	a1, a2 := planOne(t, b, "c1", target, time.Hour), planOne(t, b, "c2", target, time.Hour)
	c1 := apply(t, b, a1, false)
	c2 := apply(t, b, a2, false)
	if before := decode(t, c2.Before); c2.Made || !before.Elements[0].Present || before.Elements[0].Owner != a1.Key {
		t.Fatalf("Apply c2: made %t before %s; want not made, present, owned by %s", c2.Made, c2.Before, a1.Key)
	}
	undo(t, b, c2)
	l.mustFail(t, l.far4, l.port, syscall.ECONNREFUSED)

	// The rules are rewritten (new handles) under the element: Undo finds
	// things by name and content.
	l.mustNft(t, l.near, "flush", "chain", "inet", "abuse_responder", "output")
	other := planOne(t, b, "c3", abuse.Target{IP: l.far4b, Port: l.port, Protocol: "tcp"}, 0)
	c3 := apply(t, b, other, false)
	if !c3.Made || !strings.Contains(strings.Join(c3.Calls, "\n"), "add rule") {
		t.Fatalf("Apply c3 after the chain was flushed: calls %q; want the rules again", c3.Calls)
	}
	undo(t, b, c1)
	l.mustConnect(t, l.far4, l.port)
	l.mustFail(t, l.far4b, l.port, syscall.ECONNREFUSED)
	if !l.hasTable(t, l.near, "abuse_responder") {
		t.Fatal("Undo of c1 deleted the table while c3's element is in it")
	}
	undo(t, b, c3)
	if l.hasTable(t, l.near, "abuse_responder") {
		t.Fatal("the last Undo left the table")
	}
}

// A port without a protocol blocks tcp and udp on that port; no port and
// no protocol blocks the address for everything, with an ICMP reject.
func TestPortOnlyAndAllProtocols(t *testing.T) {
	l := newLab(t)
	b := l.backend(t)
	port := planOne(t, b, "c1", abuse.Target{IP: l.far4, Port: l.port}, 0)
	if port.Key != fmt.Sprintf("c1:nftables:198.51.100.7/32:all:%d", l.port) {
		t.Fatalf("Plan key = %q", port.Key)
	}
	cp := apply(t, b, port, false)
	if r := decode(t, cp.After); len(r.Elements) != 2 || r.Elements[0].Set != "v4_tcp" || r.Elements[1].Set != "v4_udp" || !r.Elements[0].Present || !r.Elements[1].Present {
		t.Fatalf("After = %s; want present in v4_tcp and v4_udp", cp.After)
	}
	l.mustFail(t, l.far4, l.port, syscall.ECONNREFUSED)
	l.mustConnect(t, l.far4, l.port2)
	if chk := verify(t, b, port); !chk.Holds {
		t.Fatalf("Verify = %+v", chk)
	}

	all := planOne(t, b, "c2", abuse.Target{IP: l.far4b}, 0)
	ca := apply(t, b, all, false)
	l.mustFail(t, l.far4b, l.port2, syscall.EHOSTUNREACH)
	if chk := verify(t, b, all); !chk.Holds || strings.Contains(chk.Detail, "connect") {
		t.Fatalf("Verify = %+v; want it to hold without a connect (no port)", chk)
	}
	undo(t, b, cp)
	undo(t, b, ca)
	l.mustConnect(t, l.far4, l.port)
	l.mustConnect(t, l.far4b, l.port2)
	if l.hasTable(t, l.near, "abuse_responder") {
		t.Fatal("Undo left the table")
	}
}

// Elements time out after Policy.BlockTTL.
func TestTTL(t *testing.T) {
	l := newLab(t)
	b := l.backend(t)
	a := planOne(t, b, "c1", abuse.Target{IP: l.far4, Port: l.port, Protocol: "tcp"}, time.Second)
	apply(t, b, a, false)
	l.mustFail(t, l.far4, l.port, syscall.ECONNREFUSED)
	deadline := time.Now().Add(5 * time.Second)
	for verify(t, b, a).Holds {
		if time.Now().After(deadline) {
			t.Fatal("the block still holds 5 s after a 1 s timeout")
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.mustConnect(t, l.far4, l.port)
}

// Backends in parallel (as two processes would be) leave one set of
// rules and every element, and the last Undo removes the table.
func TestConcurrent(t *testing.T) {
	l := newLab(t)
	lock := t.TempDir() + "/nft.lock"
	var backends [2]*Backend
	for i := range backends {
		b, err := New(Options{NetNS: l.nsPath(l.near), LockFile: lock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		backends[i] = b
	}
	const n = 8
	actions := make([]remediate.Action, n)
	changes := make([]remediate.Change, n)
	for i := range actions {
		ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)})
		actions[i] = planOne(t, backends[0], fmt.Sprint("c", i), abuse.Target{IP: ip, Port: 22, Protocol: "tcp"}, time.Hour)
	}
	each := func(f func(i int, b *Backend) error) {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = f(i, backends[i%2]) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	each(func(i int, b *Backend) (err error) {
		changes[i], err = b.Apply(context.Background(), actions[i], false)
		return err
	})
	for _, a := range actions {
		if chk := verify(t, backends[0], a); !chk.Holds {
			t.Fatalf("Verify(%s) = %+v", a.Key, chk)
		}
	}
	if got := strings.Count(l.mustNft(t, l.near, "list", "chain", "inet", "abuse_responder", "output"), "reject"); got != len(layout) {
		t.Fatalf("%d rules after parallel Apply, want %d", got, len(layout))
	}
	each(func(i int, b *Backend) error { return b.Undo(context.Background(), changes[i]) })
	if l.hasTable(t, l.near, "abuse_responder") {
		t.Fatal("parallel Undo left the table")
	}
}

// The process stopped between Apply and the engine's record: Undo gets
// only the key and the kind, and finds the element by its comment.
func TestUndoByKeyOnly(t *testing.T) {
	l := newLab(t)
	b := l.backend(t)
	a := planOne(t, b, "c1", abuse.Target{IP: l.far4, Port: l.port}, time.Hour)
	apply(t, b, a, false)
	l.mustFail(t, l.far4, l.port, syscall.ECONNREFUSED)
	undo(t, b, remediate.Change{Key: a.Key, Kind: remediate.KindNftables})
	l.mustConnect(t, l.far4, l.port)
	if l.hasTable(t, l.near, "abuse_responder") {
		t.Fatal("Undo by key left the table")
	}
}
