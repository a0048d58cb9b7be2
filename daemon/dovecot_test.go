package daemon

import (
	"errors"
	"testing"

	"github.com/abuse-responder/abuse-responder/internal/embedded"
	"github.com/abuse-responder/abuse-responder/store"
)

// TestDovecotLoop runs the whole loop against a real Dovecot: notice →
// summary; Dovecot restarts while the daemon idles and the approval
// arrives meanwhile; the daemon is killed after the confirm is stored and
// restarted; exactly one summary and one threaded reply go out.
func TestDovecotLoop(t *testing.T) {
	dc, err := embedded.StartDovecot(t.TempDir(), testMailbox, "pw", "Processed", "Sent")
	if errors.Is(err, embedded.ErrNoDovecot) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dc.Stop)
	h := newHarnessOn(t, dc)
	r1 := h.start(crashAt("after-handle", 2))
	if err := h.imap.Deliver(noticeMail(t, noticeAuth)); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the summary", func() bool { return len(h.sentTo("ops@example.com")) >= 1 })
	h.waitFor("the summary to be marked sent (after its copy to Sent)", func() bool {
		return h.outbox(testCase+":summary").Status == store.OutSent
	})

	dc.Stop() // the daemon is idling on a connection that now dies
	if err := dc.Start(); err != nil {
		t.Fatal(err)
	}
	h.approve() // lands after the restart: the watcher must reconnect to see it
	select {
	case <-r1.crashed:
	case err := <-r1.done:
		t.Fatalf("daemon ended before the crash point: %v", err)
	}
	if err := r1.wait(t); !errors.Is(err, errCrash) {
		t.Fatalf("first run ended with %v, want the simulated crash", err)
	}
	r2 := h.start(nil)
	h.waitClosed()
	if err := r2.wait(t); err != nil {
		t.Fatal(err)
	}
	h.checkOnce()
	if n, _ := dc.Count("Sent"); n != 2 {
		t.Errorf("%d mails in Dovecot's Sent, want the summary and the reply", n)
	}
}
