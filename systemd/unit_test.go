// Package systemd holds the service unit; this test keeps its sandbox as
// tight as the README says.
package systemd

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestExposure runs systemd's own offline analysis on the unit: the
// exposure must stay at or below 1.5, the ceiling.
func TestExposure(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed; the exposure cannot be measured here")
	}
	score, _ := exposure(t, "abuse-responder.service")
	if score > 1.5 {
		t.Errorf("exposure %.1f, want at most 1.5", score)
	}
	t.Logf("exposure %.1f", score)
}

func TestUnitContract(t *testing.T) {
	out, err := os.ReadFile("abuse-responder.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(out)
	for _, want := range []string{"Type=notify", "RestartPreventExitStatus=2", "StateDirectory=abuse-responder",
		"LoadCredential=imap-password:", "LoadCredential=smtp-password:", "WatchdogSec=", "ExecStart=/usr/local/bin/abuse-responder run"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
}

// TestExposureWithNftables merges the nftables drop-in into the unit, as
// systemd does, and checks the exposure stays at or below 1.5.
func TestExposureWithNftables(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed; the exposure cannot be measured here")
	}
	unit, err := os.ReadFile("abuse-responder.service")
	if err != nil {
		t.Fatal(err)
	}
	dropIn, err := os.ReadFile("nftables.conf")
	if err != nil {
		t.Fatal(err)
	}
	// The drop-in's lines go at the end of [Service], after the unit's own,
	// which is where systemd reads a drop-in.
	merged := strings.Replace(string(unit), "[Install]", strings.TrimPrefix(string(dropIn[strings.Index(string(dropIn), "[Service]"):]), "[Service]")+"\n[Install]", 1)
	path := t.TempDir() + "/abuse-responder.service"
	if err := os.WriteFile(path, []byte(merged), 0o644); err != nil {
		t.Fatal(err)
	}
	score, out := exposure(t, path)
	if score > 1.5 {
		t.Errorf("exposure with the nftables drop-in %.1f, want at most 1.5", score)
	}
	if !strings.Contains(string(out), "CAP_NET_ADMIN") {
		t.Errorf("the analysis does not see CAP_NET_ADMIN: the drop-in was not merged\n%s", out)
	}
	t.Logf("exposure with the nftables drop-in %.1f", score)
}

// exposure runs systemd's offline analysis on a unit file and returns its
// overall exposure level and the whole report.
func exposure(t *testing.T, path string) (float64, []byte) {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security %s: %v\n%s", path, err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for abuse-responder.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("exposure level %q: %v", m[1], err)
	}
	return score, out
}
