package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// withPassword returns minimal with the [imap] password line replaced.
func withPassword(lines string) string {
	return strings.Replace(minimal, `password = "imap-secret"`, lines, 1)
}

func TestPasswordSources(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "imap-pw", "from-file\n")
	crlf := writeFile(t, dir, "imap-pw-crlf", "from-crlf\r\n")
	creds := t.TempDir()
	writeFile(t, creds, "imap-password", "from-credential\n")
	writeFile(t, creds, "smtp-password", "smtp-credential")

	tests := []struct {
		name     string
		lines    string
		credsDir string
		imap     string
		smtp     string
	}{
		{"inline", `password = "inline"`, "", "inline", ""},
		{"file", `password_file = "` + file + `"`, "", "from-file", ""},
		{"file with CRLF", `password_file = "` + crlf + `"`, "", "from-crlf", ""},
		{"credential", ``, creds, "from-credential", ""},
		{"file before credential", `password_file = "` + file + `"`, creds, "from-file", ""},
		{"credential before inline", `password = "inline"`, creds, "from-credential", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := withPassword(tt.lines)
			cfg, err := LoadBytes("c.toml", []byte(doc), Options{CredentialsDir: tt.credsDir})
			if err != nil {
				t.Fatalf("LoadBytes(%s) error:\n%v", tt.name, err)
			}
			if got := cfg.IMAP.Password.Reveal(); got != tt.imap {
				t.Errorf("LoadBytes(%s).IMAP.Password.Reveal() = %q, want %q", tt.name, got, tt.imap)
			}
		})
	}

	// An unauthenticated SMTP relay ignores an smtp-password credential
	// rather than refusing it: the credentials directory may be shared.
	cfg, err := LoadBytes("c.toml", []byte(minimal), Options{CredentialsDir: creds})
	if err != nil {
		t.Fatalf("LoadBytes(minimal, creds) error:\n%v", err)
	}
	if got := cfg.SMTP.Password.Reveal(); got != "smtp-credential" {
		t.Errorf("LoadBytes(minimal, creds).SMTP.Password.Reveal() = %q, want %q", got, "smtp-credential")
	}
}

func TestPasswordProblems(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "imap-pw", "s3cr3t-in-file\n")
	empty := writeFile(t, dir, "empty", "\n")
	missing := filepath.Join(dir, "missing")
	creds := t.TempDir()
	if err := os.Mkdir(filepath.Join(creds, "imap-password"), 0o700); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		lines    string
		credsDir string
		want     Problem
	}{
		{"both", "password = \"s3cr3t-inline\"\npassword_file = \"" + file + `"`, "",
			Problem{Line: 4, Key: "imap.password", Msg: "set together with imap.password_file; keep only one"}},
		{"missing file", `password_file = "` + missing + `"`, "",
			Problem{Line: 4, Key: "imap.password_file", Msg: "cannot read password file: stat " + missing + ": no such file or directory"}},
		{"directory", `password_file = "` + dir + `"`, "",
			Problem{Line: 4, Key: "imap.password_file", Msg: fmt.Sprintf("password file %q is not a regular file", dir)}},
		{"empty file", `password_file = "` + empty + `"`, "",
			Problem{Line: 4, Key: "imap.password_file", Msg: fmt.Sprintf("password file %q is empty", empty)}},
		{"empty path", `password_file = ""`, "",
			Problem{Line: 4, Key: "imap.password_file", Msg: "must not be empty; leave the key out instead"}},
		{"bad credential", ``, creds,
			Problem{Key: "imap.password", Msg: fmt.Sprintf("systemd credential %q is not a regular file", filepath.Join(creds, "imap-password"))}},
		{"none", ``, "",
			Problem{Key: "imap.password", Msg: "required: set imap.password_file, the systemd credential imap-password (LoadCredential=), or imap.password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("c.toml", []byte(withPassword(tt.lines)), Options{CredentialsDir: tt.credsDir})
			if got := problems(t, "LoadBytes", err); !reflect.DeepEqual(got, []Problem{tt.want}) {
				t.Errorf("LoadBytes(%s) problems = %+v, want %+v", tt.name, got, []Problem{tt.want})
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("LoadBytes(%s).Error() = %q, shows the secret", tt.name, err)
			}
		})
	}
}

// TestSecretNeverPrinted formats a loaded Config every way a program might
// (fmt verbs, JSON, slog text and JSON, error text) and looks for the
// passwords.
func TestSecretNeverPrinted(t *testing.T) {
	const imapPW, smtpPW = "imap-hunter2-value", "smtp-hunter2-value"
	dir := t.TempDir()
	file := writeFile(t, dir, "smtp-pw", smtpPW+"\n")
	doc := strings.Replace(withPassword(`password = "`+imapPW+`"`), `from = "Abuse desk <abuse@example.com>"`,
		`from = "Abuse desk <abuse@example.com>"`+"\nusername = \"abuse@example.com\"\npassword_file = \""+file+`"`, 1)
	cfg, err := LoadBytes("c.toml", []byte(doc), Options{})
	if err != nil {
		t.Fatalf("LoadBytes(secrets) error:\n%v", err)
	}
	if cfg.IMAP.Password.Reveal() != imapPW || cfg.SMTP.Password.Reveal() != smtpPW {
		t.Fatalf("LoadBytes(secrets): passwords %q, %q, want %q, %q", cfg.IMAP.Password.Reveal(), cfg.SMTP.Password.Reveal(), imapPW, smtpPW)
	}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outputs = append(outputs, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, *cfg), fmt.Sprintf(verb, cfg.IMAP), fmt.Sprintf(verb, cfg.SMTP.Password))
	}
	outputs = append(outputs, fmt.Sprint(cfg.IMAP.Password), cfg.IMAP.Password.String(), cfg.IMAP.Password.GoString())
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("json.Marshal(cfg) error: %v", err)
	}
	outputs = append(outputs, string(js))
	text, _ := cfg.IMAP.Password.MarshalText()
	outputs = append(outputs, string(text))

	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		l := slog.New(h)
		l.Info("loaded", "config", cfg, "imap", cfg.IMAP, "password", cfg.IMAP.Password, slog.Any("smtp_password", cfg.SMTP.Password))
	}
	outputs = append(outputs, logs.String())

	// Error text: a file with the inline password and problems around it.
	badDocs := []string{
		strings.Replace(doc, `password = "`+imapPW+`"`, `password = "`+imapPW+`"`+"\npassword_file = \"/nonexistent\"", 1),
		strings.Replace(doc, `password = "`+imapPW+`"`, `password = "`+imapPW, 1),
		strings.Replace(doc, `password = "`+imapPW+`"`, `password = "`+imapPW+`" trailing`, 1),
		strings.Replace(doc, `password = "`+imapPW+`"`, `password = ["`+imapPW+`"]`, 1),
		strings.Replace(doc, `password = "`+imapPW+`"`, `pasword = "`+imapPW+`"`, 1),
	}
	for i, bad := range badDocs {
		_, err := LoadBytes("c.toml", []byte(bad), Options{})
		if err == nil {
			t.Fatalf("LoadBytes(bad doc %d) = nil error, want problems", i)
		}
		outputs = append(outputs, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
	}

	for i, out := range outputs {
		for _, pw := range []string{imapPW, smtpPW, "hunter2"} {
			if strings.Contains(out, pw) {
				t.Errorf("output %d shows a secret: %s", i, out)
			}
		}
	}
	if !strings.Contains(logs.String(), "<secret>") {
		t.Errorf("slog output %q does not show <secret>", logs.String())
	}
}

// TestLoadReadsCredentialsDirectory checks that Load, unlike LoadWith,
// takes the credentials directory from the environment, as systemd sets it.
func TestLoadReadsCredentialsDirectory(t *testing.T) {
	creds := t.TempDir()
	writeFile(t, creds, "imap-password", "from-env-credential\n")
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	path := writeFile(t, t.TempDir(), "c.toml", withPassword(""))
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s) error:\n%v", path, err)
	}
	if got := cfg.IMAP.Password.Reveal(); got != "from-env-credential" {
		t.Errorf("Load(%s).IMAP.Password.Reveal() = %q, want %q", path, got, "from-env-credential")
	}
}
