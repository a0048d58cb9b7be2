package evidence

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the parser's output (check them by hand after)")

// goldenRef is the mail date the family fixtures are read with; files
// that test the syslog year have their own.
var goldenRef = time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC)

var goldenRefs = map[string]time.Time{
	"sshd-newyear": time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC),
}

// TestGolden parses testdata/<family>.txt and compares the whole Result
// with <family>.golden.json, which was written by hand from FORMATS.md.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 15 {
		t.Errorf("only %d family fixtures in testdata, want at least 15", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ref, ok := goldenRefs[name]
			if !ok {
				ref = goldenRef
			}
			got, err := json.Marshal(Parse(string(raw), ref))
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(f, ".txt") + ".golden.json"
			if *update {
				var buf bytes.Buffer
				json.Indent(&buf, got, "", "  ")
				buf.WriteByte('\n')
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			compareJSON(t, "Parse("+name+")", got, want)
		})
	}
}

// compareJSON compares two JSON documents by value and reports the events
// and summaries that differ one by one, so a failure reads quickly.
func compareJSON(t *testing.T, call string, gotJSON, wantJSON []byte) {
	t.Helper()
	var got, want map[string]any
	if err := json.Unmarshal(gotJSON, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(wantJSON, &want); err != nil {
		t.Fatalf("golden for %s: %v", call, err)
	}
	for _, key := range []string{"events", "summaries"} {
		g, _ := got[key].([]any)
		w, _ := want[key].([]any)
		for i := 0; i < max(len(g), len(w)); i++ {
			var gi, wi any
			if i < len(g) {
				gi = g[i]
			}
			if i < len(w) {
				wi = w[i]
			}
			if !reflect.DeepEqual(gi, wi) {
				gs, _ := json.Marshal(gi)
				ws, _ := json.Marshal(wi)
				t.Errorf("%s %s[%d]\n got %s\nwant %s", call, key, i, gs, ws)
			}
		}
	}
	for _, key := range []string{"lines", "unparsed"} {
		if got[key] != want[key] {
			t.Errorf("%s %s = %v, want %v", call, key, got[key], want[key])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s has keys %v, want %v", call, keys(got), keys(want))
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
