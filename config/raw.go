package config

import (
	"reflect"
	"strings"
)

// The raw structs mirror the TOML file one to one. Every leaf is a pointer
// (or a nil-able slice) so that validation can tell a key that is missing,
// and so takes its default, from a key set to its zero value: `idle = false`
// and `web_roots = []` are choices, not omissions. The decoder runs with
// DisallowUnknownFields, so these structs are also the list of known keys.

type rawConfig struct {
	IMAP      rawIMAP      `toml:"imap"`
	SMTP      rawSMTP      `toml:"smtp"`
	Notices   rawNotices   `toml:"notices"`
	Approval  rawApproval  `toml:"approval"`
	Reply     rawReply     `toml:"reply"`
	AWS       rawAWS       `toml:"aws"`
	Analyze   rawAnalyze   `toml:"analyze"`
	Remediate rawRemediate `toml:"remediate"`
	Store     rawStore     `toml:"store"`
	Metrics   rawMetrics   `toml:"metrics"`
	Log       rawLog       `toml:"log"`
}

type rawIMAP struct {
	Address          *string `toml:"address"`
	TLS              *string `toml:"tls"`
	Username         *string `toml:"username"`
	Password         *string `toml:"password"`
	PasswordFile     *string `toml:"password_file"`
	Auth             *string `toml:"auth"`
	Mailbox          *string `toml:"mailbox"`
	ProcessedMailbox *string `toml:"processed_mailbox"`
	SentMailbox      *string `toml:"sent_mailbox"`
	PollInterval     *string `toml:"poll_interval"`
	IDLE             *bool   `toml:"idle"`
}

type rawSMTP struct {
	Address      *string `toml:"address"`
	TLS          *string `toml:"tls"`
	Username     *string `toml:"username"`
	Password     *string `toml:"password"`
	PasswordFile *string `toml:"password_file"`
	From         *string `toml:"from"`
	Timeout      *string `toml:"timeout"`
	HELO         *string `toml:"helo"`
}

type rawNotices struct {
	Senders                    *[]string `toml:"senders"`
	Accounts                   *[]string `toml:"accounts"`
	RequireAuthenticatedSender *bool     `toml:"require_authenticated_sender"`
}

type rawApproval struct {
	Approvers                  *[]string `toml:"approvers"`
	SummaryTo                  *[]string `toml:"summary_to"`
	ReplyTo                    *string   `toml:"reply_to"`
	RequireAuthenticatedSender *bool     `toml:"require_authenticated_sender"`
	AuthservID                 *string   `toml:"authserv_id"`
	TokenTTL                   *string   `toml:"token_ttl"`
	SecretFile                 *string   `toml:"secret_file"`
	Reminders                  *[]string `toml:"reminders"`
}

type rawReply struct {
	Template *string `toml:"template"`
	Contact  *string `toml:"contact"`
}

type rawAWS struct {
	Regions     *[]string    `toml:"regions"`
	EndpointURL *string      `toml:"endpoint_url"`
	Accounts    []rawAccount `toml:"accounts"`
}

type rawAccount struct {
	ID         *string `toml:"id"`
	RoleARN    *string `toml:"role_arn"`
	ExternalID *string `toml:"external_id"`
}

type rawAnalyze struct {
	AccessLogs   *[]string `toml:"access_logs"`
	ModsecLogs   *[]string `toml:"modsec_logs"`
	WebRoots     *[]string `toml:"web_roots"`
	FlowLogGroup *string   `toml:"flow_log_group"`
	WindowMargin *string   `toml:"window_margin"`
	HostEvidence *string   `toml:"host_evidence"`
	RemoteBinary *string   `toml:"remote_binary"`
}

type rawRemediate struct {
	Mode            *string   `toml:"mode"`
	DryRun          *bool     `toml:"dry_run"`
	Actions         *[]string `toml:"actions"`
	Allowlist       *[]string `toml:"allowlist"`
	ProtectTag      *string   `toml:"protect_tag"`
	NACLRuleBand    *[]int64  `toml:"nacl_rule_band"`
	BlockTTL        *string   `toml:"block_ttl"`
	QuarantineGroup *string   `toml:"quarantine_group"`
	NftablesOn      *string   `toml:"nftables_on"`
	Snapshots       *bool     `toml:"quarantine_snapshots"`
	VerifyFromInst  *bool     `toml:"verify_from_instance"`
}

type rawStore struct {
	Path *string `toml:"path"`
}

type rawMetrics struct {
	Listen *string `toml:"listen"`
}

type rawLog struct {
	Level  *string `toml:"level"`
	Format *string `toml:"format"`
}

// orString returns *p, or def when the key was missing.
func orString(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

// orBool returns *p, or def when the key was missing.
func orBool(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

// orStrings returns *p, or a copy of def when the key was missing, so that
// no two Configs share a backing array.
func orStrings(p *[]string, def ...string) []string {
	if p == nil {
		return append([]string(nil), def...)
	}
	return *p
}

// typeAt returns the raw type that the key path parts (as go-toml reports
// them, without array indexes) lead to, stepping through pointers and into
// the element of arrays of tables on the way.
func typeAt(parts []string) (reflect.Type, bool) {
	t := reflect.TypeFor[rawConfig]()
	for _, part := range parts {
		t = deref(t)
		if t.Kind() == reflect.Slice {
			t = deref(t.Elem())
		}
		if t.Kind() != reflect.Struct {
			return nil, false
		}
		f, ok := fieldByTag(t, part)
		if !ok {
			return nil, false
		}
		t = f.Type
	}
	return deref(t), true
}

// expectedType describes, for a type-mismatch message, what the raw structs
// accept at the key path parts. elem asks for the element type of an array,
// for a wrong element. It returns "" when the path leads nowhere known.
func expectedType(parts []string, elem bool) string {
	t, ok := typeAt(parts)
	if !ok {
		return ""
	}
	if elem && t.Kind() == reflect.Slice {
		t = deref(t.Elem())
	}
	return describeType(t)
}

// knownKeys lists the keys that the table at parts accepts, for suggesting
// one in place of an unknown key.
func knownKeys(parts []string) []string {
	t, ok := typeAt(parts)
	if ok && t.Kind() == reflect.Slice {
		t = deref(t.Elem())
	}
	if !ok || t.Kind() != reflect.Struct {
		return nil
	}
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		keys = append(keys, tag)
	}
	return keys
}

// foldedKey finds a key part that go-toml would take for a known key by
// ignoring case (it matches struct fields case-insensitively), so that
// "Level" can be reported as unknown instead of silently setting, or
// silently losing to, "level". It returns the part's position and the
// known key, or -1.
func foldedKey(parts []string) (int, string) {
	t := reflect.TypeFor[rawConfig]()
	for i, part := range parts {
		t = deref(t)
		if t.Kind() == reflect.Slice {
			t = deref(t.Elem())
		}
		if t.Kind() != reflect.Struct {
			return -1, ""
		}
		if f, ok := fieldByTag(t, part); ok {
			t = f.Type
			continue
		}
		for j := range t.NumField() {
			tag, _, _ := strings.Cut(t.Field(j).Tag.Get("toml"), ",")
			if strings.EqualFold(tag, part) {
				return i, tag
			}
		}
		// Strict mode reports a key that matches nothing.
		return -1, ""
	}
	return -1, ""
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int64:
		return "an integer"
	case reflect.Struct:
		return "a table"
	case reflect.Slice:
		if inner := describeType(deref(t.Elem())); inner != "" {
			return "an array of " + plural(inner)
		}
	}
	return ""
}

// plural turns "a string" into "strings" and "a table" into "tables".
func plural(article string) string {
	_, noun, _ := strings.Cut(article, " ")
	return noun + "s"
}
