package config

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// fourProblems has one unknown key, one bad duration, one bad CIDR and a
// clear-text connection to a public host, and nothing else wrong.
const fourProblems = `[imap]
address = "mail.example.com:993"
typo_key = 1
tls = "none"
username = "abuse@example.com"
password = "imap-secret"
poll_interval = "5 minutes"

[smtp]
address = "smtp.example.com:465"
from = "abuse@example.com"

[approval]
approvers = ["alice@example.com"]
summary_to = ["ops@example.com"]
authserv_id = "mx.example.com"

[remediate]
allowlist = [
  "10.0.0.0/8",
  "10.0.0.300/8",
]
`

func TestAllProblemsAtOnce(t *testing.T) {
	_, err := LoadBytes("bad.toml", []byte(fourProblems), Options{})
	got := problems(t, "LoadBytes(fourProblems)", err)
	want := []Problem{
		{Line: 3, Key: "imap.typo_key", Msg: "unknown key"},
		{Line: 4, Key: "imap.tls", Msg: `"none" sends the password in clear text; allowed only for loopback addresses, not "mail.example.com"`},
		{Line: 7, Key: "imap.poll_interval", Msg: `invalid duration "5 minutes": use Go syntax such as "90s", "5m", "2h"`},
		{Line: 21, Key: "remediate.allowlist[1]", Msg: `"10.0.0.300/8" is not an IP address or CIDR prefix`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadBytes(fourProblems) problems =\n%+v\nwant\n%+v", got, want)
	}
	wantText := `bad.toml:3: imap.typo_key: unknown key
bad.toml:4: imap.tls: "none" sends the password in clear text; allowed only for loopback addresses, not "mail.example.com"
bad.toml:7: imap.poll_interval: invalid duration "5 minutes": use Go syntax such as "90s", "5m", "2h"
bad.toml:21: remediate.allowlist[1]: "10.0.0.300/8" is not an IP address or CIDR prefix`
	if err.Error() != wantText {
		t.Errorf("LoadBytes(fourProblems).Error() =\n%s\nwant\n%s", err, wantText)
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "c.toml", Problems: []Problem{
		{Line: 2, Key: "imap.tls", Msg: "bad"},
		{Line: 0, Key: "smtp.from", Msg: "required"},
		{Line: 5, Msg: "unterminated string"},
	}}
	want := "c.toml:2: imap.tls: bad\nc.toml: smtp.from: required\nc.toml:5: unterminated string"
	if got := e.Error(); got != want {
		t.Errorf("(*Error).Error() =\n%s\nwant\n%s", got, want)
	}
}

// TestDecodeProblems covers what go-toml itself reports: syntax, types,
// duplicates, unknown keys. Each doc is complete, so the problems listed
// are all of them.
func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []Problem
	}{
		{
			name: "syntax error",
			doc:  strings.Replace(minimal, `from = "Abuse desk <abuse@example.com>"`, `from = "Abuse desk`, 1),
			want: []Problem{{Line: 8, Msg: "basic strings cannot have new lines"}},
		},
		{
			name: "missing equals sign",
			doc:  minimal + "[log]\nlevel \"debug\"\n",
			want: []Problem{{Line: 15, Msg: "expected '=' after key"}},
		},
		{
			name: "type error",
			doc:  strings.Replace(minimal, "[imap]\n", "[imap]\npoll_interval = 5\n", 1),
			want: []Problem{{Line: 2, Key: "imap.poll_interval", Msg: "want a string, not an integer"}},
		},
		{
			name: "several type errors and an unknown key",
			doc: strings.Replace(minimal, "[imap]\n", "[imap]\nidle = \"yes\"\n", 1) +
				"[remediate]\nnacl_rule_band = [\"40\", 89]\ndry_run = 1\nmodee = \"report-only\"\n",
			want: []Problem{
				{Line: 2, Key: "imap.idle", Msg: "want a boolean, not a string"},
				{Line: 16, Key: "remediate.nacl_rule_band[0]", Msg: "want an integer, not a string"},
				{Line: 17, Key: "remediate.dry_run", Msg: "want a boolean, not an integer"},
				{Line: 18, Key: "remediate.modee", Msg: "unknown key; did you mean mode?"},
			},
		},
		{
			name: "table where a string belongs",
			doc:  minimal + "[store]\npath = { dir = \"/x\" }\n",
			want: []Problem{{Line: 15, Key: "store.path", Msg: "want a string, not a table"}},
		},
		{
			name: "key defined twice",
			doc:  strings.Replace(minimal, "[approval]\n", "[approval]\ntoken_ttl = \"1h\"\ntoken_ttl = \"2h\"\n", 1),
			want: []Problem{{Line: 12, Key: "approval.token_ttl", Msg: "already defined on line 11"}},
		},
		{
			name: "table defined twice keeps the first",
			doc:  minimal + "[imap]\nmailbox = \"Other\"\n",
			want: []Problem{{Line: 14, Key: "imap", Msg: "already defined on line 1"}},
		},
		{
			name: "unknown table and array-table key",
			doc: minimal + "[imapp]\naddress = \"x\"\n" +
				"[[aws.accounts]]\nid = \"111122223333\"\n[[aws.accounts]]\nid = \"444455556666\"\nrole = \"r\"\n",
			want: []Problem{
				{Line: 14, Key: "imapp", Msg: "unknown table; did you mean imap?"},
				{Line: 20, Key: "aws.accounts[1].role", Msg: "unknown key"},
			},
		},
		{
			name: "unknown quoted key",
			doc:  minimal + "[log]\n\"lev el\" = \"x\"\n",
			want: []Problem{{Line: 15, Key: `log."lev el"`, Msg: "unknown key; did you mean level?"}},
		},
		{
			name: "table headers where arrays belong",
			doc:  minimal + "[[remediate.allowlist]]\n[remediate.actions]\n",
			want: []Problem{
				{Line: 14, Key: "remediate.allowlist", Msg: "want an array of strings, not an array of tables"},
				{Line: 15, Key: "remediate.actions", Msg: "want an array of strings, not a table"},
			},
		},
		{
			name: "keys are case-sensitive",
			doc:  minimal + "[log]\nLevel = \"debug\"\nlevel = \"warn\"\n[METRICS]\nlisten = \"\"\n",
			want: []Problem{
				{Line: 15, Key: "log.Level", Msg: "unknown key; did you mean level? (keys are case-sensitive)"},
				{Line: 17, Key: "METRICS", Msg: "unknown table; did you mean metrics? (keys are case-sensitive)"},
			},
		},
		{
			name: "wrong element in an inline array of tables",
			doc:  minimal + "[aws]\naccounts = [{ id = 111122223333 }]\n",
			want: []Problem{{Line: 15, Key: "aws.accounts[0].id", Msg: "want a string, not an integer"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("c.toml", []byte(tt.doc), Options{})
			got := problems(t, "LoadBytes", err)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("LoadBytes(%s) problems =\n%+v\nwant\n%+v", tt.name, got, tt.want)
			}
		})
	}
}

// TestValidationProblems sets one key in an otherwise minimal config and
// checks the one problem it causes, on the line of that key.
func TestValidationProblems(t *testing.T) {
	tests := []struct {
		section, lines string
		key, msg       string
		noLine         bool // the problem is on a key the file does not set
	}{
		{"imap", `poll_interval = "0s"`, "imap.poll_interval", `duration "0s" must be greater than zero`, false},
		{"imap", `tls = "ssl"`, "imap.tls", `"ssl" is not one of "implicit", "starttls", "none"`, false},
		{"imap", `auth = "xoauth2"`, "imap.auth", `"xoauth2" is not one of "login", "plain"`, false},
		{"imap", `mailbox = ""`, "imap.mailbox", `must not be empty (default "INBOX")`, false},
		{"smtp", `tls = "none"`, "smtp.tls", `"none" sends the password in clear text; allowed only for loopback addresses, not "smtp.example.com"`, false},
		{"smtp", `timeout = "30"`, "smtp.timeout", `invalid duration "30": use Go syntax such as "90s", "5m", "2h"`, false},
		{"smtp", `helo = "my host"`, "smtp.helo", `"my host" is not a host name`, false},
		{"smtp", `username = "relay"`, "smtp.password", "required with smtp.username: set smtp.password_file, the systemd credential smtp-password (LoadCredential=), or smtp.password", true},
		{"smtp", `password = "x"`, "smtp.password", "set, but smtp.username is not", false},
		{"notices", `accounts = ["1234"]`, "notices.accounts[0]", `"1234" is not an AWS account ID (12 digits)`, false},
		{"notices", `senders = []`, "notices.senders", "required: the addresses AWS sends abuse notices from", false},
		{"notices", `senders = ["not an address"]`, "notices.senders[0]", `"not an address" is not an e-mail address: no angle-addr`, false},
		{"approval", `reminders = ["8h", "soon"]`, "approval.reminders[1]", `invalid duration "soon": use Go syntax such as "90s", "5m", "2h"`, false},
		{"approval", `reply_to = "nobody"`, "approval.reply_to", `"nobody" is not an e-mail address: missing '@' or angle-addr`, false},
		{"approval", `secret_file = ""`, "approval.secret_file", "must not be empty; leave the key out for the default next to store.path", false},
		{"reply", `template = "/nonexistent/reply.tmpl"`, "reply.template", "cannot use template: stat /nonexistent/reply.tmpl: no such file or directory", false},
		{"aws", `regions = ["eu-central-1", "EU-West"]`, "aws.regions[1]", `"EU-West" is not an AWS region name such as "eu-central-1"`, false},
		{"aws", `endpoint_url = "localhost:5000"`, "aws.endpoint_url", `"localhost:5000" is not an http or https URL such as "http://127.0.0.1:5000"`, false},
		{"analyze", `access_logs = ["/var/log/[access.log"]`, "analyze.access_logs[0]", `bad glob "/var/log/[access.log": syntax error in pattern`, false},
		{"analyze", `window_margin = "-1h"`, "analyze.window_margin", `duration "-1h" must be greater than zero`, false},
		{"remediate", `mode = "auto"`, "remediate.mode", `"auto" is not one of "block-then-confirm", "confirm-then-block", "report-only"`, false},
		{"remediate", `actions = ["nacl", "iptables"]`, "remediate.actions[1]", `"iptables" is not one of "nacl", "security-group", "quarantine", "nftables"`, false},
		{"remediate", `actions = ["nacl", "nacl"]`, "remediate.actions[1]", `"nacl" is listed twice`, false},
		{"remediate", `actions = []`, "remediate.actions", `must name at least one action unless remediate.mode is "report-only"`, false},
		{"remediate", `actions = ["quarantine"]`, "remediate.quarantine_group", `required when remediate.actions has "quarantine": the security group that isolates an instance`, true},
		{"remediate", `quarantine_group = "sg-12"`, "remediate.quarantine_group", `"sg-12" is not a security group ID such as "sg-0123456789abcdef0"`, false},
		{"remediate", `nacl_rule_band = [90, 40]`, "remediate.nacl_rule_band", "[90, 40] is not a range of NACL rule numbers: want 1 <= first <= last <= 32766", false},
		{"remediate", `nacl_rule_band = [0, 40]`, "remediate.nacl_rule_band", "[0, 40] is not a range of NACL rule numbers: want 1 <= first <= last <= 32766", false},
		{"remediate", `nacl_rule_band = [40]`, "remediate.nacl_rule_band", "want two rule numbers [first, last], not 1", false},
		{"remediate", `protect_tag = ""`, "remediate.protect_tag", `must not be empty (default "abuse-responder:protect")`, false},
		{"store", `path = ""`, "store.path", `must not be empty (default "/var/lib/abuse-responder/state.db")`, false},
		{"metrics", `listen = "9464"`, "metrics.listen", `want host:port such as "127.0.0.1:9464", not "9464"`, false},
		{"metrics", `listen = "localhost:http"`, "metrics.listen", `port "http" of "localhost:http" is not a number from 1 to 65535`, false},
		{"log", `level = "trace"`, "log.level", `"trace" is not one of "debug", "info", "warn", "error"`, false},
		{"log", `format = "logfmt"`, "log.format", `"logfmt" is not one of "text", "json"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.section+"/"+tt.lines, func(t *testing.T) {
			doc, line := with(tt.section, tt.lines)
			if tt.noLine {
				line = 0
			}
			_, err := LoadBytes("c.toml", []byte(doc), Options{})
			want := []Problem{{Line: line, Key: tt.key, Msg: tt.msg}}
			if got := problems(t, "LoadBytes", err); !reflect.DeepEqual(got, want) {
				t.Errorf("LoadBytes([%s] %s) problems =\n%+v\nwant\n%+v", tt.section, tt.lines, got, want)
			}
		})
	}
}

// TestAccountProblems checks the [[aws.accounts]] entries, whose keys are
// indexed.
func TestAccountProblems(t *testing.T) {
	doc := minimal + `
[[aws.accounts]]
id = "111122223333"
role_arn = "arn:aws:iam::111122223333:role/abuse-responder"

[[aws.accounts]]
role_arn = "role/abuse-responder"

[[aws.accounts]]
id = "111122223333"
`
	_, err := LoadBytes("c.toml", []byte(doc), Options{})
	want := []Problem{
		{Line: 20, Key: "aws.accounts[1].role_arn", Msg: `"role/abuse-responder" is not an IAM role ARN such as "arn:aws:iam::111122223333:role/abuse-responder"`},
		{Line: 23, Key: "aws.accounts[2].id", Msg: "account 111122223333 is listed twice"},
		{Line: 0, Key: "aws.accounts[1].id", Msg: "required: the 12-digit AWS account ID"},
	}
	if got := problems(t, "LoadBytes", err); !reflect.DeepEqual(got, want) {
		t.Errorf("LoadBytes(accounts) problems =\n%+v\nwant\n%+v", got, want)
	}
}

func TestRequiredKeys(t *testing.T) {
	_, err := LoadBytes("empty.toml", nil, Options{})
	var keys []string
	for _, p := range problems(t, "LoadBytes(empty)", err) {
		if p.Line != 0 {
			t.Errorf("LoadBytes(empty): problem %+v has a line in an empty file", p)
		}
		keys = append(keys, p.Key)
	}
	want := []string{"imap.address", "imap.username", "imap.password", "smtp.address", "smtp.from",
		"approval.approvers", "approval.summary_to", "approval.authserv_id"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("LoadBytes(empty) problem keys = %q, want %q", keys, want)
	}
}

func TestPlainTextOnLoopback(t *testing.T) {
	for _, addr := range []string{"localhost:143", "127.0.0.1:143", "127.9.9.9:25", "[::1]:143", "LOCALHOST:25"} {
		doc := strings.Replace(minimal, `address = "imap.example.com:993"`, `address = "`+addr+`"`+"\ntls = \"none\"", 1)
		if _, err := LoadBytes("c.toml", []byte(doc), Options{}); err != nil {
			t.Errorf("LoadBytes(imap %s, tls none) error:\n%v", addr, err)
		}
	}
	for _, addr := range []string{"10.0.0.1:143", "[::2]:143", "localhost.example.com:143", "0.0.0.0:143"} {
		doc := strings.Replace(minimal, `address = "imap.example.com:993"`, `address = "`+addr+`"`+"\ntls = \"none\"", 1)
		_, err := LoadBytes("c.toml", []byte(doc), Options{})
		if got := problems(t, "LoadBytes", err); len(got) != 1 || got[0].Key != "imap.tls" {
			t.Errorf("LoadBytes(imap %s, tls none) problems = %+v, want one on imap.tls", addr, got)
		}
	}
}

// FuzzLoadBytes feeds arbitrary documents to LoadBytes: it must not panic,
// and every failure must be an *Error whose problems each name a key or a
// line inside the document.
func FuzzLoadBytes(f *testing.F) {
	example, err := os.ReadFile("../config.example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(fourProblems))
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "[imap]\nmailbox = 1\n[[aws.accounts]]\nid = 1\n[aws]\naccounts = [{ id = \"x\" }]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadBytes("fuzz.toml", data, Options{})
		if err == nil {
			if cfg == nil {
				t.Fatalf("LoadBytes(%q) = nil, nil", data)
			}
			return
		}
		if cfg != nil {
			t.Errorf("LoadBytes(%q) = non-nil Config and error %v", data, err)
		}
		var cerr *Error
		if !errors.As(err, &cerr) {
			t.Fatalf("LoadBytes(%q) error = %v (%T), want *Error", data, err, err)
		}
		if err.Error() == "" || len(cerr.Problems) == 0 {
			t.Fatalf("LoadBytes(%q) error has no text or no problems: %#v", data, cerr)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, p := range cerr.Problems {
			if p.Key == "" && p.Line == 0 {
				t.Errorf("LoadBytes(%q) problem %+v has neither key nor line", data, p)
			}
			if p.Line < 0 || p.Line > lines {
				t.Errorf("LoadBytes(%q) problem %+v has line outside 1..%d", data, p, lines)
			}
			if p.Msg == "" {
				t.Errorf("LoadBytes(%q) problem %+v has no message", data, p)
			}
		}
	})
}
