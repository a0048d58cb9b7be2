package config

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// redacted is what every printing of a Secret shows.
const redacted = "<secret>"

// Secret holds a password. Every way of printing it (fmt verbs including
// %#v, encoding/json, encoding.TextMarshaler, slog) shows "<secret>", so
// that logging a Config, or an error that embeds one, never leaks it
// (DESIGN.md, "Security model"). Only Reveal gives the value, which makes
// the one place that needs it easy to find.
type Secret struct {
	value string
}

// NewSecret wraps a value, for tests and callers that build a Config
// without a file.
func NewSecret(value string) Secret { return Secret{value: value} }

// Reveal returns the secret value, for handing to an authentication call.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether no secret was configured.
func (s Secret) IsZero() bool { return s.value == "" }

// String returns "<secret>".
func (Secret) String() string { return redacted }

// GoString returns "<secret>", for %#v.
func (Secret) GoString() string { return redacted }

// Format writes "<secret>" for every verb, so that no verb (%x, %q, %v of
// the enclosing struct) can reach the value.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalText returns "<secret>".
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON returns the JSON string "<secret>".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue returns "<secret>", for slog.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// maxSecretSize bounds what is read from a password file: a password is
// short, and a path to a huge file is a mistake to report, not to load.
const maxSecretSize = 64 << 10

// password finds the section's password, in order: its password_file, the
// systemd credential "<section>-password" in opts.CredentialsDir, the
// inline password. A file is preferred to the inline key because the
// config file is often world-readable and ends up in backups and tickets.
// It returns where the password came from ("" for nowhere), so the caller
// can judge a password that has no use. Problems name the key and the path,
// never the contents.
func (c *checker) password(section string, inline, file *string) (Secret, string) {
	fileKey, inlineKey := section+".password_file", section+".password"
	if inline != nil && file != nil {
		c.addf(inlineKey, "set together with %s; keep only one", fileKey)
		return Secret{}, ""
	}
	if file != nil {
		v, ok := c.readSecret(fileKey, "password file", *file)
		if !ok {
			return Secret{}, ""
		}
		return Secret{value: v}, fileKey
	}
	if dir := c.opts.CredentialsDir; dir != "" {
		path := filepath.Join(dir, section+"-password")
		if _, err := os.Stat(path); err == nil {
			v, ok := c.readSecret(inlineKey, "systemd credential", path)
			if !ok {
				return Secret{}, ""
			}
			return Secret{value: v}, "credential"
		}
	}
	if inline != nil && *inline != "" {
		return Secret{value: *inline}, inlineKey
	}
	return Secret{}, ""
}

// readSecret reads a password file (what names its kind for messages),
// dropping the trailing newline that
// editors and `echo` add. Only regular files are read: a FIFO or a device
// would block or never end.
func (c *checker) readSecret(key, what, path string) (string, bool) {
	if path == "" {
		c.addf(key, "must not be empty; leave the key out instead")
		return "", false
	}
	// Stat before opening: opening a FIFO would block until a writer came.
	fi, err := os.Stat(path)
	if err != nil {
		c.addf(key, "cannot read %s: %v", what, err)
		return "", false
	}
	if !fi.Mode().IsRegular() {
		c.addf(key, "%s %q is not a regular file", what, path)
		return "", false
	}
	f, err := os.Open(path)
	if err != nil {
		c.addf(key, "cannot read %s: %v", what, err)
		return "", false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		c.addf(key, "cannot read %s %q: %v", what, path, err)
		return "", false
	}
	if len(data) > maxSecretSize {
		c.addf(key, "%s %q is larger than %d bytes", what, path, maxSecretSize)
		return "", false
	}
	v := strings.TrimRight(string(data), "\r\n")
	if v == "" {
		c.addf(key, "%s %q is empty", what, path)
		return "", false
	}
	return v, true
}
