package notice

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden.json files from the parser's output")

// TestGolden parses every testdata/*.eml and compares the parse --json
// object with its golden file. The goldens were written by hand from
// FORMATS.md, not generated, except when refreshed with -update.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 {
		t.Errorf("only %d fixtures in testdata, want at least 30", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".eml"), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Parse(raw)
			if err != nil {
				t.Fatalf("Parse(%s) error: %v", name, err)
			}
			gotJSON, err := json.Marshal(NewOutput(name, res))
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(f, ".eml") + ".golden.json"
			if *update {
				var buf bytes.Buffer
				json.Indent(&buf, gotJSON, "", "  ")
				buf.WriteByte('\n')
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantJSON, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			compareOutput(t, name, gotJSON, wantJSON)
		})
	}
}

func compareOutput(t *testing.T, name string, gotJSON, wantJSON []byte) {
	t.Helper()
	var got, want map[string]any
	if err := json.Unmarshal(gotJSON, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(wantJSON, &want); err != nil {
		t.Fatalf("golden for %s: %v", name, err)
	}
	if want["is_notice"] == false {
		if got["is_notice"] != false {
			t.Errorf("Parse(%s) is_notice = %v, want false", name, got["is_notice"])
		}
		if r, _ := got["reason"].(string); r == "" {
			t.Errorf("Parse(%s) gives no reason for a non-notice", name)
		}
		return
	}
	if got, want := problemFields(got["problems"]), problemFields(want["problems"]); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(%s) problems in fields %v, want %v", name, got, want)
	}
	delete(got, "problems")
	delete(want, "problems")
	for k, w := range want {
		if g, ok := got[k]; !ok || !reflect.DeepEqual(g, w) {
			t.Errorf("Parse(%s) %s = %s, want %s", name, k, js(g), js(w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("Parse(%s) has unexpected key %s = %s", name, k, js(g))
		}
	}
}

// problemFields reduces a problems list to its sorted field names; goldens
// list names ("case_id"), the parser gives objects with messages.
func problemFields(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, p := range list {
		switch p := p.(type) {
		case string:
			out = append(out, p)
		case map[string]any:
			out = append(out, fmt.Sprint(p["field"]))
		}
	}
	sort.Strings(out)
	return slicesCompact(out)
}

func slicesCompact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestBounded feeds hostile shapes: each must end with a clear error.
func TestBounded(t *testing.T) {
	big := append([]byte("From: a@example.com\nSubject: Your AWS Abuse Report [12345678901]\n\n"),
		bytes.Repeat([]byte("x"), 50<<20)...)
	deep := nestedMultipart(1000)
	wide := manyParts(5000)
	for _, tc := range []struct {
		name string
		raw  []byte
		want error
	}{
		{"50 MB", big, ErrTooLarge},
		{"1000 levels deep", deep, ErrTooComplex},
		{"5000 parts", wide, ErrTooComplex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse(%s) error = %v, want %v", tc.name, err, tc.want)
			}
		})
	}
}

func nestedMultipart(depth int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\nSubject: Your AWS Abuse Report [12345678901]\nMIME-Version: 1.0\n")
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\n\nhello\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\n", i)
	}
	return b.Bytes()
}

func manyParts(n int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\nSubject: Your AWS Abuse Report [12345678901]\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"x\"\n\n")
	for i := 0; i < n; i++ {
		b.WriteString("--x\nContent-Type: text/plain\n\npart\n")
	}
	b.WriteString("--x--\n")
	return b.Bytes()
}

// TestNeverOwnAddress checks on every fixture that no target is one of the
// instance's own addresses and every target is a valid address.
func TestNeverOwnAddress(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		res, err := Parse(raw)
		if err != nil || !res.IsNotice {
			continue
		}
		own := map[string]bool{}
		for _, r := range res.Notice.Resources {
			own[r.PublicIP] = true
		}
		for _, tg := range res.Notice.Targets {
			if !tg.IP.IsValid() || own[tg.IP.String()] {
				t.Errorf("Parse(%s) target %v is invalid or our own address", f, tg)
			}
		}
	}
}
