package approval

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	testKey  = bytes.Repeat([]byte{0x42}, 32)
	testNow  = time.Date(2026, 4, 14, 6, 0, 0, 0, time.UTC)
	testPlan = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

func TestTokenRoundTrip(t *testing.T) {
	s := NewSigner(testKey)
	tests := []struct{ caseID, plan string }{
		{"13051177201-1", testPlan},
		{"13051177201-1", "not-hex plan/hash"},
		{"13051177201-1", "ABCDEF"}, // upper-case hex must come back unchanged
		{"", ""},
		{strings.Repeat("c", 300), strings.Repeat("ab", 100)},
		{"ünïcödé <case>@x", "p"},
	}
	safe := regexp.MustCompile(`^ar1-[a-z2-7]+$`)
	for _, tt := range tests {
		tok := s.Token(tt.caseID, tt.plan, testNow.Add(time.Hour))
		if !safe.MatchString(tok) {
			t.Errorf("Token(%q, %q) = %q, not safe in a Message-ID", tt.caseID, tt.plan, tok)
		}
		c, p, err := s.Verify(tok, testNow)
		if err != nil || c != tt.caseID || p != tt.plan {
			t.Errorf("Verify(Token(%q, %q)) = %q, %q, %v", tt.caseID, tt.plan, c, p, err)
		}
		if c, p, err := s.Verify(strings.ToUpper(tok), testNow); err != nil || c != tt.caseID || p != tt.plan {
			t.Errorf("Verify(upper-case token) = %q, %q, %v; want it accepted", c, p, err)
		}
	}
	if a, b := s.Token("1", testPlan, testNow), s.Token("1", testPlan, testNow); a == b {
		t.Errorf("Token() gave %s twice: a reminder would reuse a Message-ID", a)
	}
	if n := len(s.Token("13051177201-1", testPlan, testNow)); n > 140 {
		t.Errorf("token for a SHA-256 plan is %d characters, want at most 140", n)
	}
}

func TestTokenRefused(t *testing.T) {
	s := NewSigner(testKey)
	tok := s.Token("13051177201-1", testPlan, testNow.Add(time.Hour))
	expired := s.Token("13051177201-1", testPlan, testNow.Add(-time.Second))
	tests := []struct {
		name, token string
		want        error
	}{
		{"other key", NewSigner(bytes.Repeat([]byte{1}, 32)).Token("13051177201-1", testPlan, testNow.Add(time.Hour)), ErrBadToken},
		{"expired", expired, ErrExpired},
		{"expired and tampered", expired[:len(expired)-1] + flip(expired[len(expired)-1]), ErrBadToken},
		{"truncated", tok[:len(tok)-2], ErrBadToken},
		{"extended", tok + "a", ErrBadToken},
		{"no prefix", strings.TrimPrefix(tok, TokenPrefix), ErrBadToken},
		{"other version", "ar2-" + strings.TrimPrefix(tok, TokenPrefix), ErrBadToken},
		{"empty", "", ErrBadToken},
		{"prefix only", TokenPrefix, ErrBadToken},
		{"not base32", TokenPrefix + "!!!!", ErrBadToken},
		{"huge", TokenPrefix + strings.Repeat("a", 5000), ErrBadToken},
	}
	for i := len(TokenPrefix); i < len(tok); i++ {
		tests = append(tests, struct {
			name, token string
			want        error
		}{fmt.Sprintf("flip at %d", i), tok[:i] + flip(tok[i]) + tok[i+1:], ErrBadToken})
	}
	for _, tt := range tests {
		if c, p, err := s.Verify(tt.token, testNow); !errors.Is(err, tt.want) {
			t.Errorf("Verify(%s %q) = %q, %q, %v; want %v", tt.name, tt.token, c, p, err, tt.want)
		}
	}
	// The expiry itself is still valid.
	at := s.Token("x", "y", testNow)
	if _, _, err := s.Verify(at, testNow); err != nil {
		t.Errorf("Verify at the expiry = %v, want valid", err)
	}
}

// flip returns another base32 character than c.
func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "sub", "approval.key")
	key, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKey(new) = %v", err)
	}
	if len(key) != 32 || bytes.Equal(key, make([]byte, 32)) {
		t.Errorf("LoadOrCreateKey(new) = %x, want 32 random bytes", key)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode = %v (%v), want 0700", st.Mode().Perm(), err)
	}
	again, err := LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(again, key) {
		t.Errorf("LoadOrCreateKey(existing) = %x, %v; want the same key", again, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".approval-key-*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	bad := map[string]func(p string) error{
		"world-readable": func(p string) error {
			if err := os.WriteFile(p, key, 0o600); err != nil {
				return err
			}
			return os.Chmod(p, 0o644)
		},
		"too short":   func(p string) error { return os.WriteFile(p, []byte("short\n"), 0o600) },
		"empty":       func(p string) error { return os.WriteFile(p, nil, 0o600) },
		"a directory": func(p string) error { return os.Mkdir(p, 0o700) },
	}
	for name, create := range bad {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := create(p); err != nil {
			t.Fatal(err)
		}
		if k, err := LoadOrCreateKey(p); err == nil {
			t.Errorf("LoadOrCreateKey(%s) = %x, want an error", name, k)
		}
	}
	// A hand-made key (openssl rand -hex 32 > file) is accepted as is.
	hand := filepath.Join(dir, "hand.key")
	if err := os.WriteFile(hand, []byte(strings.Repeat("ab", 32)+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if k, err := LoadOrCreateKey(hand); err != nil || len(k) != 65 {
		t.Errorf("LoadOrCreateKey(hand-made) = %d bytes, %v; want 65 bytes", len(k), err)
	}
}
