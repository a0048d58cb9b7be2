package config

import (
	"errors"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest config that validates: the required keys only.
const minimal = `[imap]
address = "imap.example.com:993"
username = "abuse@example.com"
password = "imap-secret"

[smtp]
address = "smtp.example.com:465"
from = "Abuse desk <abuse@example.com>"

[approval]
approvers = ["alice@example.com"]
summary_to = ["ops@example.com"]
authserv_id = "mx.example.com"
`

// with returns minimal with lines added at the top of section (a new
// section at the end when minimal has none), and the line the first added
// line lands on.
func with(section, lines string) (doc string, line int) {
	header := "[" + section + "]\n"
	if i := strings.Index(minimal, header); i >= 0 {
		at := i + len(header)
		doc = minimal[:at] + lines + "\n" + minimal[at:]
		return doc, strings.Count(minimal[:at], "\n") + 1
	}
	doc = minimal + header + lines + "\n"
	return doc, strings.Count(minimal, "\n") + 2
}

// problems returns the problems of err, failing the test when err is not
// an *Error.
func problems(t *testing.T, call string, err error) []Problem {
	t.Helper()
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("%s error = %v (%T), want *Error", call, err, err)
	}
	return cerr.Problems
}

func TestExampleValidates(t *testing.T) {
	data, err := os.ReadFile("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	// The example points password_file at /etc/abuse-responder, as a real
	// install does; put those files in a temporary directory instead.
	dir := t.TempDir()
	for _, name := range []string{"imap-password", "smtp-password"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("pw-"+name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := string(data)
	if n := strings.Count(text, `password_file = "/etc/abuse-responder/`); n != 2 {
		t.Fatalf("example has %d password_file keys under /etc/abuse-responder, want 2", n)
	}
	text = strings.ReplaceAll(text, `password_file = "/etc/abuse-responder/`, `password_file = "`+dir+"/")
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg, err := LoadWith(path, Options{})
	if err != nil {
		t.Fatalf("LoadWith(example) error:\n%v", err)
	}
	if cfg.IMAP.TLS == TLSNone || cfg.SMTP.TLS == TLSNone {
		t.Errorf("LoadWith(example): tls = %q/%q, want no \"none\" in the example", cfg.IMAP.TLS, cfg.SMTP.TLS)
	}
	if got := cfg.IMAP.Password.Reveal(); got != "pw-imap-password" {
		t.Errorf("LoadWith(example).IMAP.Password.Reveal() = %q, want %q", got, "pw-imap-password")
	}
	if !strings.Contains(text, "LoadCredential=") {
		t.Errorf("example does not mention LoadCredential=")
	}
}

// TestExampleDocumentsEveryKey keeps the example and the raw structs in
// step: every key Load knows appears in the example.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	rt := reflect.TypeFor[rawConfig]()
	for i := range rt.NumField() {
		section := rt.Field(i).Tag.Get("toml")
		if !strings.Contains(text, "["+section+"]") {
			t.Errorf("example lacks section [%s]", section)
		}
		for _, key := range knownKeys([]string{section}) {
			sub := knownKeys([]string{section, key})
			if sub != nil {
				if !strings.Contains(text, "[["+section+"."+key+"]]") {
					t.Errorf("example lacks [[%s.%s]]", section, key)
				}
				for _, k := range sub {
					if !strings.Contains(text, "\n"+k+" = ") {
						t.Errorf("example lacks %s.%s[].%s", section, key, k)
					}
				}
				continue
			}
			if !strings.Contains(text, "\n"+key+" = ") && !strings.Contains(text, "\n# "+key+" = ") {
				t.Errorf("example lacks %s.%s", section, key)
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := LoadBytes("minimal.toml", []byte(minimal), Options{})
	if err != nil {
		t.Fatalf("LoadBytes(minimal) error:\n%v", err)
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"imap.tls", cfg.IMAP.TLS, TLSImplicit},
		{"imap.auth", cfg.IMAP.Auth, AuthLogin},
		{"imap.mailbox", cfg.IMAP.Mailbox, "INBOX"},
		{"imap.processed_mailbox", cfg.IMAP.ProcessedMailbox, ""},
		{"imap.sent_mailbox", cfg.IMAP.SentMailbox, ""},
		{"imap.poll_interval", cfg.IMAP.PollInterval, 60 * time.Second},
		{"imap.idle", cfg.IMAP.IDLE, true},
		{"smtp.tls", cfg.SMTP.TLS, TLSImplicit},
		{"smtp.timeout", cfg.SMTP.Timeout, 30 * time.Second},
		{"smtp.helo", cfg.SMTP.HELO, ""},
		{"smtp.from", cfg.SMTP.From.String(), `"Abuse desk" <abuse@example.com>`},
		{"notices.senders", cfg.Notices.Senders, []string{"ec2-abuse@amazon.com", "trustandsafety@support.aws.com"}},
		{"notices.accounts", len(cfg.Notices.Accounts), 0},
		{"notices.require_authenticated_sender", cfg.Notices.RequireAuthenticatedSender, true},
		{"approval.reply_to", cfg.Approval.ReplyTo.Address, "abuse@example.com"},
		{"approval.require_authenticated_sender", cfg.Approval.RequireAuthenticatedSender, true},
		{"approval.token_ttl", cfg.Approval.TokenTTL, 48 * time.Hour},
		{"approval.secret_file", cfg.Approval.SecretFile, "/var/lib/abuse-responder/approval.key"},
		{"approval.reminders", cfg.Approval.Reminders, []time.Duration{8 * time.Hour, 2 * time.Hour}},
		{"reply.template", cfg.Reply.Template, ""},
		{"aws.regions", len(cfg.AWS.Regions), 0},
		{"aws.endpoint_url", cfg.AWS.EndpointURL, ""},
		{"aws.accounts", len(cfg.AWS.Accounts), 0},
		{"analyze.access_logs", cfg.Analyze.AccessLogs, []string{"/var/log/apache2/*access*.log", "/var/log/nginx/*access*.log"}},
		{"analyze.modsec_logs", cfg.Analyze.ModsecLogs, []string{"/var/log/apache2/modsec_audit.log"}},
		{"analyze.web_roots", cfg.Analyze.WebRoots, []string{"/var/www"}},
		{"analyze.flow_log_group", cfg.Analyze.FlowLogGroup, ""},
		{"analyze.window_margin", cfg.Analyze.WindowMargin, time.Hour},
		{"remediate.mode", cfg.Remediate.Mode, ModeBlockThenConfirm},
		{"remediate.dry_run", cfg.Remediate.DryRun, false},
		{"remediate.actions", cfg.Remediate.Actions, []Action{ActionNACL}},
		{"remediate.allowlist", len(cfg.Remediate.Allowlist), 0},
		{"remediate.protect_tag", cfg.Remediate.ProtectTag, "abuse-responder:protect"},
		{"remediate.nacl_rule_band", cfg.Remediate.NACLRuleBand, [2]int{40, 89}},
		{"remediate.block_ttl", cfg.Remediate.BlockTTL, 168 * time.Hour},
		{"remediate.quarantine_group", cfg.Remediate.QuarantineGroup, ""},
		{"store.path", cfg.Store.Path, "/var/lib/abuse-responder/state.db"},
		{"metrics.listen", cfg.Metrics.Listen, "127.0.0.1:9464"},
		{"log.level", cfg.Log.Level, slog.LevelInfo},
		{"log.format", cfg.Log.Format, LogText},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("LoadBytes(minimal): %s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

// TestZeroValuesAreNotDefaults checks that a key set to its zero value
// keeps it instead of taking the default.
func TestZeroValuesAreNotDefaults(t *testing.T) {
	doc := strings.Replace(minimal, "[imap]\n", "[imap]\nidle = false\n", 1) +
		"[analyze]\nweb_roots = []\naccess_logs = []\n[metrics]\nlisten = \"\"\n[notices]\nrequire_authenticated_sender = false\n" +
		"[store]\npath = \"/srv/ar/state.db\"\n"
	cfg, err := LoadBytes("zero.toml", []byte(doc), Options{})
	if err != nil {
		t.Fatalf("LoadBytes(zero) error:\n%v", err)
	}
	if cfg.IMAP.IDLE || len(cfg.Analyze.WebRoots) != 0 || len(cfg.Analyze.AccessLogs) != 0 ||
		cfg.Metrics.Listen != "" || cfg.Notices.RequireAuthenticatedSender {
		t.Errorf("LoadBytes(zero) = %+v, want idle false, web_roots and access_logs empty, listen \"\", require_authenticated_sender false", cfg)
	}
	if want := "/srv/ar/approval.key"; cfg.Approval.SecretFile != want {
		t.Errorf("LoadBytes(zero).Approval.SecretFile = %q, want %q (next to store.path)", cfg.Approval.SecretFile, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want fs.ErrNotExist", err)
	}
}

func TestAllowlist(t *testing.T) {
	tests := []struct {
		in   string
		want string // the prefix, or the problem message
		ok   bool
	}{
		{`"10.0.0.0/8"`, "10.0.0.0/8", true},
		{`"192.0.2.7"`, "192.0.2.7/32", true},
		{`"2001:db8::1"`, "2001:db8::1/128", true},
		{`"2001:db8:1::/48"`, "2001:db8:1::/48", true},
		{`"::ffff:10.1.2.3"`, "10.1.2.3/32", true},
		{`"::ffff:10.0.0.0/104"`, "10.0.0.0/8", true},
		{`"10.0.0.1/8"`, "host bits set; did you mean 10.0.0.0/8?", false},
		{`"2001:db8::1/32"`, "host bits set; did you mean 2001:db8::/32?", false},
		{`"10.0.0.300/8"`, `"10.0.0.300/8" is not an IP address or CIDR prefix`, false},
		{`"example.com"`, `"example.com" is not an IP address or CIDR prefix`, false},
		{`"fe80::1%eth0"`, `"fe80::1%eth0" is not an IP address or CIDR prefix`, false},
		{`"10.0.0.0/33"`, `"10.0.0.0/33" is not an IP address or CIDR prefix`, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			doc, line := with("remediate", "allowlist = ["+tt.in+"]")
			cfg, err := LoadBytes("a.toml", []byte(doc), Options{})
			if tt.ok {
				if err != nil {
					t.Fatalf("LoadBytes(allowlist = [%s]) error:\n%v", tt.in, err)
				}
				want := []netip.Prefix{netip.MustParsePrefix(tt.want)}
				if !reflect.DeepEqual(cfg.Remediate.Allowlist, want) {
					t.Errorf("LoadBytes(allowlist = [%s]).Remediate.Allowlist = %v, want %v", tt.in, cfg.Remediate.Allowlist, want)
				}
				return
			}
			want := []Problem{{Line: line, Key: "remediate.allowlist[0]", Msg: tt.want}}
			if got := problems(t, "LoadBytes", err); !reflect.DeepEqual(got, want) {
				t.Errorf("LoadBytes(allowlist = [%s]) problems = %+v, want %+v", tt.in, got, want)
			}
		})
	}
}

func TestHostDefaults(t *testing.T) {
	aws, an := Defaults()
	if len(aws.Accounts) != 0 || an.WindowMargin != time.Hour || an.HostEvidence != "auto" ||
		len(an.WebRoots) != 1 || an.WebRoots[0] != "/var/www" || len(an.AccessLogs) == 0 {
		t.Errorf("Defaults() = %+v, %+v", aws, an)
	}
}
