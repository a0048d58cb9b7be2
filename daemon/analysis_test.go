package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abuse-responder/abuse-responder/analyze"
	"github.com/abuse-responder/abuse-responder/store"
)

// TestSummaryShowsAnalysis runs the real analyzer on a host fixture (no
// AWS): the summary names the verdict and the script at fault, the reply
// carries the cause, and the analysis is kept with the case.
func TestSummaryShowsAnalysis(t *testing.T) {
	root := filepath.Join(t.TempDir(), "html")
	script := filepath.Join(root, "wp-content", "uploads", "scan.php")
	if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
		t.Fatal(err)
	}
	err := os.WriteFile(script, []byte("<?php\nforeach ([23, 2323] as $p) {\n  $s = @fsockopen('203.0.113.10', $p, $e, $m, 1);\n}\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.analyzer = analyze.New(analyze.Config{HostMode: analyze.HostLocal, WebRoots: []string{root},
		AccessLogs: []string{}, ModsecLogs: []string{}, CronPaths: []string{}, UnitDirs: []string{}}, nil)
	r := h.start(nil)
	if err := h.imap.Deliver(noticeMail(t, noticeAuth)); err != nil {
		t.Fatal(err)
	}
	h.approve()
	h.waitClosed()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	summary := string(h.sentTo("ops@example.com")[0].Raw)
	for _, want := range []string{"verdict: confirmed", "scan.php", "the report shows", "AWS not consulted"} {
		if !strings.Contains(unfold(summary), want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	reply := string(h.sentTo(awsAddr)[0].Raw)
	if !strings.Contains(unfold(reply), "Likely cause: a compromised web application") {
		t.Errorf("reply lacks the cause:\n%s", reply)
	}

	st, err := store.Open(context.Background(), h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.View(context.Background(), func(tx *store.Tx) error {
		a, ok, err := tx.LatestAnalysis(testCase)
		if err != nil || !ok || a.Verdict != "confirmed" || !strings.Contains(string(a.Doc), script) {
			t.Errorf("LatestAnalysis = %v, %v, %v; want the confirmed analysis naming %s", a.Verdict, ok, err, script)
		}
		return nil
	})
}

// unfold joins the soft line breaks of quoted-printable and the wrapped
// lines of the text, so that a phrase is found wherever it was wrapped.
func unfold(s string) string {
	s = strings.ReplaceAll(s, "=\r\n", "")
	s = strings.ReplaceAll(s, "=\n", "")
	return strings.Join(strings.Fields(s), " ")
}
