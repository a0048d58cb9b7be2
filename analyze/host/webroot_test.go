package host

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestWebRootBounds checks MaxFileRead, MaxFiles and that links are not
// followed.
func TestWebRootBounds(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "www")
	recent := winTo.Add(-4 * time.Minute)
	write(t, filepath.Join(root, "big.php"), "<?php @eval(base64_decode('x'));\n"+strings.Repeat("// padding\n", 100), recent)
	write(t, filepath.Join(root, "small.php"), "<?php echo 1;\n", oldTime)
	write(t, filepath.Join(dir, "outside/shell.php"), "<?php @eval(base64_decode('x'));\n", oldTime)
	symlink(t, filepath.Join(dir, "outside"), filepath.Join(root, "linked"))
	symlink(t, filepath.Join(dir, "outside/shell.php"), filepath.Join(root, "shell.php"))
	o := Options{WebRoots: []string{root}, From: winFrom, To: winTo, MaxFileRead: 200,
		ProcRoot: dir, CronPaths: []string{}, UnitDirs: []string{}}
	res, err := Collect(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"file /www/big.php:0"}
	if got := briefs(dir, res.Findings); !slices.Equal(got, want) {
		dump(t, res)
		t.Fatalf("Collect findings = %q, want %q", got, want)
	}
	if r := res.Findings[0].Reason; r != "modified 2026-04-20 21:56 UTC, 4 min before the abuse window ends" {
		t.Errorf("file finding reason = %q", r)
	}
	if !slices.ContainsFunc(res.Problems, func(s string) bool { return strings.Contains(s, "1 scripts larger than 200 bytes were not read") }) {
		t.Errorf("Collect problems = %q, want the big script noted", res.Problems)
	}

	o.MaxFileRead, o.MaxFiles = 0, 1
	res, err = Collect(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 || !slices.ContainsFunc(res.Problems, func(s string) bool { return strings.Contains(s, "stopped after 1 files") }) {
		dump(t, res)
		t.Errorf("Collect with MaxFiles 1: want one finding and the bound noted")
	}
}
