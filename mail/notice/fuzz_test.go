package notice

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds mutated mails to the parser: it must never panic, and a
// notice must always encode to JSON with valid targets.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		res, err := ParseWithLimits(raw, Limits{MaxBytes: 1 << 20, MaxParts: 50, MaxDepth: 8})
		if err != nil {
			if res.Notice != nil {
				t.Fatalf("Parse returned a notice and an error %v", err)
			}
			return
		}
		if res.IsNotice != (res.Notice != nil) {
			t.Fatalf("IsNotice = %v but Notice = %v", res.IsNotice, res.Notice)
		}
		if !res.IsNotice {
			if res.Reason == "" {
				t.Fatal("a non-notice without a reason")
			}
			return
		}
		for _, tg := range res.Notice.Targets {
			if !tg.IP.IsValid() {
				t.Fatalf("invalid target %v", tg)
			}
		}
		if _, err := json.Marshal(NewOutput("f.eml", res)); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}
